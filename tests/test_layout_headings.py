"""Issue 19: a Decree 30 header is read block by block, and centred headings are never split.

The unit tests build OCR words by hand (each text line across both columns, as Tesseract gives
them); one test typesets a header and a title at 150 dpi and reads them with Tesseract.
"""
from __future__ import annotations

from PIL import Image, ImageDraw

from models import BoundingBox, OcrPage, OcrWord
from pipeline import layout, ocr
from pipeline.sample import _font

DPI = 300
CHAR_PX = 28


def _words(y: int, line: int, x: int, text: str, space: int) -> list[OcrWord]:
    out = []
    for token in text.split():
        out.append(OcrWord(token, BoundingBox(x, y, CHAR_PX * len(token), 50), 95.0, block=1, paragraph=1, line=line))
        x += CHAR_PX * len(token) + space
    return out


def _page(*lines: list[OcrWord]) -> OcrPage:
    return OcrPage(width=2480, height=3508, dpi=DPI, words=[w for line in lines for w in line])


def test_a_spaced_heading_is_not_split_where_two_word_spaces_line_up():
    """Letter-spaced capitals: 60-px word spaces (5 mm, wider than a narrow gutter); "PHỐ | HỒ" in the
    first line lines up with "BÁCH | KHOA" in the second. The gutter is the 150-px gap to the motto."""
    first = _words(300, 1, 100, "ĐẠI HỌC QUỐC GIA THÀNH PHỐ HỒ CHÍ MINH", 60) + \
        _words(300, 1, 1570, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", 14)
    second = _words(375, 2, 365, "TRƯỜNG ĐẠI HỌC BÁCH KHOA", 60) + \
        _words(375, 2, 1600, "Độc lập - Tự do - Hạnh phúc", 14)
    assert [w.box.left for w in second if w.text in ("BÁCH", "KHOA")] == [881, 1053]  # the gap lines up
    out = layout.reading_order(_page(first, second))
    assert out.text.splitlines() == ["ĐẠI HỌC QUỐC GIA THÀNH PHỐ HỒ CHÍ MINH", "TRƯỜNG ĐẠI HỌC BÁCH KHOA",
                                     "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc"]


def test_a_centred_two_line_title_keeps_its_lines():
    """"ỦY BAN NHÂN DÂN" over "THÀNH PHỐ ĐÀ NẴNG", spaced: every gap alike, so no gutter at all."""
    page = _page(_words(300, 1, 700, "ỦY BAN NHÂN DÂN", 70), _words(375, 2, 610, "THÀNH PHỐ ĐÀ NẴNG", 70))
    assert layout.reading_order(page).words == page.words


def test_a_wider_third_line_splits_at_its_own_gutter():
    """Number left, place and date right: the date line starts left of the gutter above it."""
    lines = [_words(300, 1, 200, "UBND THÀNH PHỐ", 14) + _words(300, 1, 900, "CỘNG HÒA XÃ HỘI", 14),
             _words(375, 2, 200, "SỞ TƯ PHÁP", 14) + _words(375, 2, 900, "Độc lập Tự do", 14),
             _words(450, 3, 200, "Số: 15/STP", 14) + _words(450, 3, 560, "Đà Nẵng, ngày 10 tháng 10", 14)]
    assert layout.reading_order(_page(*lines)).text.splitlines() == [
        "UBND THÀNH PHỐ", "SỞ TƯ PHÁP", "Số: 15/STP", "CỘNG HÒA XÃ HỘI", "Độc lập Tự do", "Đà Nẵng, ngày 10 tháng 10"]


def test_a_typeset_decree_30_header_reads_block_by_block_and_the_title_whole(tmp_path):
    dpi = 150
    size = int(13 * dpi / 72)
    width = int(8.27 * dpi)
    img = Image.new("L", (width, int(2.2 * dpi)), 255)
    draw = ImageDraw.Draw(img)
    left = ["ĐẠI HỌC QUỐC GIA THÀNH PHỐ HỒ CHÍ MINH", "TRƯỜNG ĐẠI HỌC BÁCH KHOA", "Số: 215/QĐ-ĐHBK"]
    right = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
             "Thành phố Hồ Chí Minh, ngày 10 tháng 10 năm 2018"]
    title = ["QUYẾT ĐỊNH", "VỀ VIỆC BAN HÀNH QUY CHẾ ĐÀO TẠO TRÌNH ĐỘ ĐẠI HỌC"]
    sizes = [int(size * 0.8), size, size]
    for texts, centre in ((left, 0.26 * width), (right, 0.70 * width)):
        for i, text in enumerate(texts):  # each line centred in its column, as Decree 30 sets them
            font = _font(i < 2, sizes[i])
            draw.text((centre - draw.textlength(text, font=font) / 2, 0.3 * dpi + i * 1.4 * size), text,
                      font=font, fill=0)
    for i, text in enumerate(title):
        font = _font(True, size)
        draw.text((width / 2 - draw.textlength(text, font=font) / 2, 0.3 * dpi + (i + 4.5) * 1.4 * size), text,
                  font=font, fill=0)
    path = tmp_path / "header.png"
    img.save(path)
    lines = ocr.recognise(path, dpi=dpi).text.splitlines()
    assert [line.split()[0] for line in lines] == ["ĐẠI", "TRƯỜNG", "Số:", "CỘNG", "Độc", "Thành", "QUYẾT", "VỀ"]
    assert lines[0] == "ĐẠI HỌC QUỐC GIA THÀNH PHỐ HỒ CHÍ MINH"
    assert lines[-1] == title[-1]
