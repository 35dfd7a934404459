"""The reading scale comes from the letters when the file gives no resolution: a small piece of paper
is not a low-resolution A4 page (issue 19)."""
from __future__ import annotations

import unicodedata

import numpy as np
import pytest
from PIL import Image

from models import Severity
from pipeline import scale
from pipeline.document import process_document
from pipeline.reader import estimate_dpi
from pipeline.sample import SAMPLE_PAGES, typeset_page


@pytest.mark.parametrize("dpi", [150, 200, 300, 400])
def test_the_letters_give_the_resolution_of_a_typeset_page(dpi):
    grey = np.asarray(typeset_page(SAMPLE_PAGES[1], dpi=dpi))
    found = scale.dpi_from_letters(grey)
    assert found is not None and abs(found - dpi) <= 0.1 * dpi


def test_an_a4_page_keeps_the_a4_guess_and_a_blank_one_too():
    grey = np.asarray(typeset_page(SAMPLE_PAGES[0], dpi=300))
    guess = estimate_dpi(grey.shape[1], grey.shape[0])
    assert scale.reading_dpi(grey, guess) == guess == 300
    assert scale.reading_dpi(np.full((800, 600), 240, np.uint8), 68.4) == 68.4  # no letters: no opinion


def _words(text: str) -> list[str]:
    return [w.strip(".,;:") for w in unicodedata.normalize("NFC", text).split() if len(w.strip(".,;:")) > 1]


def test_a_small_crop_of_a_200_dpi_page_is_read_not_sent_back(tmp_path):
    """A 657x80 crop (two lines of 10-pt text at 200 dpi, no resolution in the file) was guessed at
    56 dpi from its pixel size as if it were A4, and so called "rescan"."""
    page = np.asarray(typeset_page(SAMPLE_PAGES[1], dpi=200, font_pt=10))
    rows = np.flatnonzero(np.diff(((page < 128).sum(axis=1) > 0).astype(int)))
    left = int(np.flatnonzero((page < 128).sum(axis=0))[0]) - 8
    top = int(rows[6]) - 4  # the third and fourth text lines
    crop = page[top:top + 80, left:left + 657]
    path = tmp_path / "crop.png"
    Image.fromarray(crop).save(path)  # no dpi in the file
    assert estimate_dpi(657, 80) < 60

    done = process_document([path], workdir=tmp_path / "w", out_pdf=tmp_path / "o.pdf", jobs=1, keep_blank=True)
    [report] = done.report.pages
    assert 120 <= report.dpi <= 220
    assert not [i for i in report.issues if i.severity is Severity.RESCAN]
    truth = [w for line in SAMPLE_PAGES[1][2:4] for w in _words(line)]
    found = set(_words(done.page_texts[0]))
    seen = [w for w in truth if w in found]
    assert len(seen) >= 0.7 * len(truth), done.page_texts[0]  # the crop cuts each line's last words


def test_small_print_keeps_its_tone_marks(tmp_path):
    """6-pt text at 300 dpi: the speckle pass, sized for 13-pt letters, took its marks for dust
    ("Nguyen", "quyet", "phep", "xay"); it now works at the letters' own scale."""
    from pipeline import clean
    from pipeline.document import read_cleaned

    page = np.asarray(typeset_page(SAMPLE_PAGES[2], dpi=300, font_pt=6))
    path = tmp_path / "small.png"
    Image.fromarray(page[: int(0.3 * page.shape[0])]).save(path, dpi=(300, 300))
    cleaned = clean.clean_page(path, dpi=300, workdir=tmp_path, stem="p", detect_orientation=False)
    words = set(_words(read_cleaned(cleaned).text))
    assert {"Nguyễn", "quyết", "phép", "xây"} <= words


def test_a_300_dpi_page_whose_file_says_72_dpi_is_read_at_300(tmp_path):
    """Image software writes 72 dpi when it knows none (a 1-bit decision cut out of its PDF by
    pdfimages said 72): the page was taken for a low-resolution one, enlarged and read worse. The
    letters decide such a header, as a missing one; a real 72-dpi page keeps it."""
    page = typeset_page(SAMPLE_PAGES[1], dpi=300).convert("1")
    path = tmp_path / "page.png"
    page.save(path, dpi=(72, 72))
    done = process_document([path], workdir=tmp_path / "w", out_pdf=tmp_path / "o.pdf", jobs=1, keep_blank=True)
    [report] = done.report.pages
    assert report.dpi == 300
    assert not [i for i in report.issues if i.code == "low_resolution"]
    small = np.asarray(typeset_page(SAMPLE_PAGES[1], dpi=72))
    assert scale.reading_dpi(small, 72.0) == 72.0
    assert scale.doubtful(72.0) and scale.doubtful(96.0) and not scale.doubtful(200.0)
