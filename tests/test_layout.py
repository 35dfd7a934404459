"""Reading order: an official letter's two-column header and closing are read column by column.

The unit tests build OCR words by hand (as Tesseract returns them: each text line across both
columns); one test typesets a letter header and reads it with Tesseract.
"""
from __future__ import annotations

from PIL import Image, ImageDraw

from models import BoundingBox, OcrPage, OcrWord
from pipeline import layout, ocr
from pipeline.sample import _font

DPI = 300
CHAR_PX = 28    # a 13 pt letter at 300 dpi, roughly
LINE_PX = 75    # line pitch
SPACE_PX = 14   # a word space


def _line(y: int, line: int, *runs: tuple[int, str], block: int = 1) -> list[OcrWord]:
    """Words of one OCR line: each run starts at x and is split at spaces, letters CHAR_PX wide."""
    words = []
    for x, text in runs:
        for token in text.split():
            width = CHAR_PX * len(token)
            words.append(OcrWord(token, BoundingBox(x, y, width, 50), 95.0, block=block, paragraph=1, line=line))
            x += width + SPACE_PX
    return words


def _page(*lines: list[OcrWord]) -> OcrPage:
    return OcrPage(width=2480, height=3508, dpi=DPI, words=[w for line in lines for w in line])


# A letter's header as Tesseract reads it: each line across both columns (gutter 6 mm, x 578-650).
HEADER = [
    _line(300, 1, (200, "UBND HUYỆN"), (650, "CỘNG HÒA XÃ HỘI")),
    _line(300 + LINE_PX, 2, (200, "PHÒNG TƯ PHÁP"), (650, "Độc lập Tự do")),
    _line(300 + 2 * LINE_PX, 3, (200, "Số: 15/TP"), (650, "Yên Sơn, ngày 10")),
    _line(300 + 3 * LINE_PX, 4, (200, "V/v cấp bản sao")),
]
# The body, after a blank line: full-width lines that cross the gutter.
BODY = [
    _line(300 + 5 * LINE_PX, 1, (200, "Căn cứ đề nghị của ông Nguyễn Văn Hùng về việc cấp"), block=2),
    _line(300 + 6 * LINE_PX, 2, (200, "bản sao trích lục hộ tịch tại thôn Đồng Cháy xã Lang"), block=2),
]


def test_a_two_column_header_is_read_left_column_first():
    page = _page(*HEADER, *BODY)
    out = layout.reading_order(page)
    assert out.text.splitlines() == [
        "UBND HUYỆN", "PHÒNG TƯ PHÁP", "Số: 15/TP", "V/v cấp bản sao",
        "CỘNG HÒA XÃ HỘI", "Độc lập Tự do", "Yên Sơn, ngày 10",
        "Căn cứ đề nghị của ông Nguyễn Văn Hùng về việc cấp",
        "bản sao trích lục hộ tịch tại thôn Đồng Cháy xã Lang",
    ]
    # the same words with the same boxes, only regrouped; each column is lines of its own
    assert sorted((w.text, w.box.left, w.box.top) for w in out.words) == sorted((w.text, w.box.left, w.box.top) for w in page.words)
    assert len({w.line_key for w in out.words}) == 9
    assert out.words[-1].line_key == BODY[-1][0].line_key  # the body keeps Tesseract's numbering


def test_a_speck_in_the_gutter_does_not_join_the_columns():
    speck = OcrWord("_", BoundingBox(600, 300, 20, 50), 74.0, block=1, paragraph=1, line=1)
    first = HEADER[0][:2] + [speck] + HEADER[0][2:]
    out = layout.reading_order(_page(first, *HEADER[1:], *BODY))
    assert out.text.splitlines()[:2] == ["UBND HUYỆN _", "PHÒNG TƯ PHÁP"]


def test_the_block_ends_at_a_blank_line():
    """A short line after a blank line (a "Kính gửi:") is not part of the header's left column."""
    greeting = _line(300 + 5 * LINE_PX, 1, (400, "Kính gửi:"), block=2)
    out = layout.reading_order(_page(*HEADER, greeting))
    assert out.text.splitlines()[-2:] == ["Yên Sơn, ngày 10", "Kính gửi:"]


def test_body_text_and_single_wide_gaps_keep_tesseract_order():
    tab = _line(300, 1, (200, "Điều 1."), (1400, "Ban hành"))  # one line with a tab stop
    table = [_line(300 + k * LINE_PX, k + 2, (200, f"{k}"), (300, "Cấp bản sao trích lục hộ tịch và xác nhận"))
             for k in range(1, 4)]  # a narrow numbering column: no letter's gutter
    leaders = [_line(800 + k * LINE_PX, k + 1, (200, "Họ và tên"), (466, "." * 25), (1200, "Giới tính"))
               for k in range(2)]  # a dotted leader fills the gap
    for lines in ([tab, *BODY], table, leaders):
        page = _page(*lines)
        assert layout.reading_order(page).words == page.words


def test_a_forms_label_rows_stay_rows_where_their_leaders_were_painted_out():
    # "Họ và tên: ……  Ngày sinh: ……" over "Mã sinh viên: ……  Điện thoại: ……", the dots gone from
    # what Tesseract read: a wide gap on both lines, as in a two-column header
    rows = [_line(800, 1, (200, "Họ và tên:"), (1300, "Ngày sinh:")),
            _line(800 + LINE_PX, 2, (200, "Mã sinh viên:"), (1300, "Điện thoại:")),
            _line(800 + 2 * LINE_PX, 3, (200, "Ngành học:"))]
    page = _page(*rows)
    assert layout.reading_order(page).text.splitlines() == [
        "Họ và tên: Ngày sinh:", "Mã sinh viên: Điện thoại:", "Ngành học:"]
    # filled in: a "label: value" pair on each side of the gap, row after row
    filled = [_line(800, 1, (200, "Họ và tên: Phạm Đức Bình"), (1300, "Ngày sinh: 11/08/1974")),
              _line(800 + LINE_PX, 2, (200, "Giới tính: Nam"), (1300, "Dân tộc: Kinh"))]
    assert layout.reading_order(_page(*filled)).text.splitlines() == [
        "Họ và tên: Phạm Đức Bình Ngày sinh: 11/08/1974", "Giới tính: Nam Dân tộc: Kinh"]
    # the same shape with no labels on the left is a letter's header, read column by column
    header = [_line(800, 1, (200, "ỦY BAN NHÂN DÂN"), (1300, "CỘNG HÒA XÃ HỘI")),
              _line(800 + LINE_PX, 2, (200, "Số: 15/UBND"), (1300, "Độc lập Tự do"))]
    assert layout.reading_order(_page(*header)).text.splitlines() == [
        "ỦY BAN NHÂN DÂN", "Số: 15/UBND", "CỘNG HÒA XÃ HỘI", "Độc lập Tự do"]


def test_a_typeset_letter_header_reads_column_by_column(tmp_path):
    """Tesseract reads a header with a ~6 mm gutter across both columns; the text keeps them apart."""
    size = int(13 * DPI / 72)
    img = Image.new("L", (int(8.27 * DPI), int(1.4 * DPI)), 255)
    draw = ImageDraw.Draw(img)
    left = ["ỦY BAN NHÂN DÂN", "HUYỆN YÊN SƠN", "Số: 215/UBND-VP", "V/v cấp phép"]
    right = ["CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "Yên Sơn, ngày 10 tháng 10 năm 2018"]
    x_right = 240 + draw.textlength(left[0], font=_font(True, size)) + 6 / 25.4 * DPI
    for i, text in enumerate(left):
        draw.text((240, 90 + i * int(1.4 * size)), text, font=_font(i < 2, size), fill=0)
    for i, text in enumerate(right):
        draw.text((x_right, 90 + i * int(1.4 * size)), text, font=_font(i < 2, size), fill=0)
    path = tmp_path / "header.png"
    img.save(path, dpi=(DPI, DPI))

    lines = ocr.recognise(path, dpi=DPI).text.splitlines()
    assert [line.split()[0] for line in lines] == ["ỦY", "HUYỆN", "Số:", "V/v", "CỘNG", "Độc", "Yên"]


def test_the_number_line_after_a_blank_line_stays_in_the_header():
    """Real letters (bench/realscans) often leave a blank line between the motto and the number/date
    line: the header is still read left block, then right block."""
    header = [
        _line(300, 1, (200, "UBND HUYỆN"), (650, "CỘNG HÒA XÃ HỘI")),
        _line(300 + LINE_PX, 2, (200, "PHÒNG TƯ PHÁP"), (650, "Độc lập Tự do")),
        _line(300 + 3 * LINE_PX, 3, (200, "Số: 15/TP"), (650, "Yên Sơn, ngày 10")),
        _line(300 + 4 * LINE_PX, 4, (200, "V/v cấp bản sao")),
    ]
    out = layout.reading_order(_page(*header, *BODY))
    assert out.text.splitlines()[:7] == [
        "UBND HUYỆN", "PHÒNG TƯ PHÁP", "Số: 15/TP", "V/v cấp bản sao",
        "CỘNG HÒA XÃ HỘI", "Độc lập Tự do", "Yên Sơn, ngày 10"]


def test_a_signer_s_name_given_too_early_is_read_in_its_row():
    """The closing: "Nơi nhận" on the left, the signer's title on the right, the name far below
    (signature and seal between) level with the list's last line; Tesseract gives the name before
    the rest of the list. The list is read whole, then the signer block."""
    y = 2000
    closing = [
        _line(y, 1, (200, "Nơi nhận:"), (1400, "KT. CHỦ TỊCH")),
        _line(y + LINE_PX, 2, (200, "- Như Điều 3;"), (1400, "PHÓ CHỦ TỊCH")),
        _line(y + 2 * LINE_PX, 3, (200, "- CT, các PCT;")),
        _line(y + 5 * LINE_PX, 1, (1400, "Huỳnh Hữu Trí"), block=3),
        _line(y + 3 * LINE_PX, 1, (200, "- Bưu điện tỉnh;"), block=4),
        _line(y + 4 * LINE_PX, 2, (200, "- Cổng TT điện tử;"), block=4),
        _line(y + 5 * LINE_PX, 3, (200, "- Lưu: VT."), block=4),
    ]
    out = layout.reading_order(_page(*closing))
    assert out.text.splitlines() == [
        "Nơi nhận:", "- Như Điều 3;", "- CT, các PCT;", "- Bưu điện tỉnh;", "- Cổng TT điện tử;", "- Lưu: VT.",
        "KT. CHỦ TỊCH", "PHÓ CHỦ TỊCH", "Huỳnh Hữu Trí"]


def test_a_two_column_page_read_left_column_first_keeps_its_order():
    """The move above never takes a left column's last line past the right column."""
    left = [_line(300 + k * LINE_PX, k + 1, (200, f"trái dòng {k}"), block=1) for k in range(4)]
    right = [_line(300 + k * LINE_PX, k + 1, (1400, f"phải dòng {k}"), block=2) for k in range(4)]
    page = _page(*left, *right)
    assert [line[0].box.top for line in layout._right_lines_in_their_rows(page.lines, 50)] == \
        [line[0].box.top for line in page.lines]
