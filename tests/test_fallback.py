"""Never worse than plain Tesseract: an unsure cleaned reading is checked block by block against the
raw page's reading (issue 19)."""
from __future__ import annotations

import numpy as np

from models import BoundingBox, OcrPage, OcrWord
from pipeline import clean, fallback
from pipeline.document import process_document
from pipeline.sample import SAMPLE_PAGES, typeset_page


def _w(text: str, x: int, y: int, conf: float, block: int) -> OcrWord:
    return OcrWord(text, BoundingBox(x, y, 30 * len(text), 40), conf, block=block, paragraph=1, line=1)


def test_a_surer_raw_block_replaces_the_cleaned_one_and_lost_words_come_back():
    cleaned = OcrPage(width=2000, height=1000, dpi=300, words=[
        _w("tu", 100, 100, 45, 1), _w("bộ", 200, 100, 40, 1), _w("đi", 300, 100, 42, 1),
        _w("Căn", 100, 400, 92, 2), _w("cứ", 250, 400, 93, 2)])
    raw = OcrPage(width=2000, height=1000, dpi=300, words=[
        _w("tu", 102, 101, 91, 1), _w("bổ", 201, 99, 88, 1), _w("di", 301, 100, 90, 1),
        _w("Căn", 100, 400, 96, 2), _w("cú", 250, 400, 97, 2),    # surer, but within the margin
        _w("Điều", 100, 700, 89, 3), _w(".", 400, 700, 95, 3)])   # cleaning lost this line
    merged, changed = fallback.better_of(cleaned, raw)
    assert merged.text.split() == ["tu", "bổ", "di", "Căn", "cứ", "Điều"]
    assert changed == 2
    assert fallback.better_of(cleaned, OcrPage(width=2000, height=1000, dpi=300))[0].words == cleaned.words


def test_only_unsure_readings_get_a_second_look():
    assert fallback.needs_second_look(OcrPage(width=10, height=10, dpi=300))
    assert fallback.needs_second_look(OcrPage(width=10, height=10, dpi=300, words=[_w("x", 0, 0, 50, 1)]))
    assert not fallback.needs_second_look(OcrPage(width=10, height=10, dpi=300, words=[_w("xã", 0, 0, 90, 1)]))
    scaled = fallback.to_cleaned_scale(OcrPage(width=100, height=50, dpi=100, words=[_w("a", 10, 5, 90, 1)]),
                                       width=200, height=100)
    assert (scaled.words[0].box.left, scaled.words[0].box.top, scaled.words[0].box.width) == (20, 10, 60)


def test_a_page_the_cleaning_wiped_out_is_read_from_the_raw_page(tmp_path, monkeypatch):
    """A cleaning step gone wrong (here: the speckle pass made to erase every mark) used to leave a
    page with ink and no words; the raw page's reading takes its place."""
    page = np.asarray(typeset_page(SAMPLE_PAGES[2], dpi=200))
    page = page[: int(0.35 * page.shape[0])]
    path = tmp_path / "page.png"
    from PIL import Image

    Image.fromarray(page).save(path, dpi=(200, 200))
    monkeypatch.setattr(clean, "despeckle", lambda binary, **_: (np.full_like(binary, 255), None))
    done = process_document([path], workdir=tmp_path / "w", out_pdf=tmp_path / "o.pdf", jobs=1, keep_blank=True)
    text = done.page_texts[0]
    assert "GIẤY TIẾP NHẬN HỒ SƠ" in text and "Yên Sơn" in text
