"""Ruled tables and forms: rules and dotted leaders out of what Tesseract reads, cells read in order.

Pages are drawn here (PIL, OpenCV): a ruled table with names and ID numbers, a rule with a letter
written across it, a form line with a dotted leader.
"""
from __future__ import annotations

import re

import numpy as np
from PIL import Image, ImageDraw

from models import BoundingBox, OcrPage, OcrWord
from pipeline import clean, page_read, tables
from pipeline.sample import _font

DPI = 300
MM = DPI / 25.4


def _blank(width: int = 2480, height: int = 1200) -> np.ndarray:
    return np.full((height, width), 255, np.uint8)


def test_a_table_rule_is_painted_out_but_a_stroke_across_it_stays():
    page = _blank()
    for y in (600, 900):
        page[y:y + 4, 200:2200] = 0          # 4 px horizontal rules, 170 mm long …
    for x in (200, 1200, 2196):
        page[600:904, x:x + 4] = 0           # … and vertical ones: a table of two cells
    page[560:650, 1000:1006] = 0            # a letter's stem written across the top rule
    page[300:390, 1500:1506] = 0            # a stem on its own, 7.6 mm: no rule
    page[150:154, 200:2200] = 0             # a lone rule, no table's: left to Tesseract
    horizontal, vertical = tables.rules(page, dpi=DPI)
    assert horizontal[600:604, 200:2200].mean() > 0.95
    assert not vertical[300:390, 1500:1506].any()
    read, found = tables.read_copy(page, page, dpi=DPI)
    assert len(found) == 2
    assert (read[600:604, 210:900] == 255).all()       # the table's rules are gone
    assert (read[700:800, 1200:1204] == 255).all()
    assert (read[560:650, 1000:1006] == 0).all()       # the stem keeps its pixels where it crosses
    assert (read[300:390, 1500:1506] == 0).all()
    assert (read[150:154, 200:2200] == 0).all()


def test_a_dotted_leader_is_painted_out_and_a_word_keeps_its_dots():
    image = Image.new("L", (2480, 400), 255)
    draw = ImageDraw.Draw(image)
    font = _font(False, int(13 * DPI / 72))
    draw.text((200, 150), "Họ và tên: " + "." * 40, font=font, fill=0)
    draw.text((200, 280), "tại Hà Nội, ngày", font=font, fill=0)
    page = np.where(np.asarray(image) < 128, 0, 255).astype(np.uint8)
    dots = tables.leaders(page, dpi=DPI)
    ink = page == 0
    assert dots[150:260].sum() > 0.8 * ink[150:260, 700:].sum()  # the leader's ink (right of "tên:")
    assert not dots[260:].any()                                   # the i's dot, the dots under ạ, ộ
    # a file that says 200 dpi for this 300-dpi page: its letters tell the leader's scale, and a
    # "letter" no letter can be (a ruled page's grid) is not used
    assert (tables.leaders(page, dpi=300, letter_px=984.0) == dots).all()
    wrong = tables.leaders(page, dpi=200, letter_px=37.0)
    assert wrong[150:260].sum() > 0.8 * ink[150:260, 700:].sum() and not wrong[260:].any()


def _table_page(rows: list[tuple[str, str, str]]) -> Image.Image:
    """An A4 page: a title, then a ruled 3-column table (No., name, ID number), one row per entry."""
    image = Image.new("L", (2480, 3508), 255)
    draw = ImageDraw.Draw(image)
    font, bold = _font(False, int(13 * DPI / 72)), _font(True, int(13 * DPI / 72))
    draw.text((300, 250), "DANH SÁCH CÔNG DÂN ĐƯỢC CẤP THẺ", font=bold, fill=0)
    xs, top, pitch = [300, 500, 1500, 2200], 400, 130
    header = ("STT", "Họ và tên", "Số định danh")
    for r, row in enumerate([header, *rows]):
        y = top + r * pitch
        for c, text in enumerate(row):
            draw.text((xs[c] + 30, y + 35), text, font=bold if r == 0 else font, fill=0)
    bottom = top + (len(rows) + 1) * pitch
    for r in range(len(rows) + 2):
        draw.line([(xs[0], top + r * pitch), (xs[-1], top + r * pitch)], fill=0, width=4)
    for x in xs:
        draw.line([(x, top), (x, bottom)], fill=0, width=4)
    return image


def test_a_ruled_table_is_read_row_by_row(tmp_path):
    rows = [("1", "Nguyễn Văn An", "001203004512"), ("2", "Trần Thị Bình", "034198007723"),
            ("3", "Lê Hoàng Cường", "079301002218"), ("4", "Phạm Minh Đức", "052187006634")]
    path = tmp_path / "table.png"
    _table_page(rows).save(path, dpi=(DPI, DPI))
    cleaned = clean.clean_page(path, dpi=DPI, workdir=tmp_path / "w", stem="t", detect_orientation=False)
    assert len(cleaned.cells) == 3 * (len(rows) + 1)
    read = page_read.read_cleaned(cleaned)
    text = tables.reading_order(read, list(cleaned.cells), dpi=cleaned.dpi).text
    flat = " ".join(text.split())
    # each row's name and ID together, the rows in order; no rule read as a letter
    names = " ".join(w for w in flat.split() if not w.isdigit() or len(w) > 2)
    assert "Họ và tên Số định danh " + " ".join(f"{name} {number}" for _, name, number in rows) in names
    assert not re.search(r"[|\[\]]", flat)
    # the lone digits of the narrow STT column Tesseract leaves out of the page's reading are read
    # cell by cell
    with_cells = page_read._read_empty_cells(read, cleaned, tmp_path / "cell.pgm")
    flat = " ".join(tables.reading_order(with_cells, list(cleaned.cells), dpi=cleaned.dpi).text.split())
    assert "STT Họ và tên Số định danh " + " ".join(" ".join(row) for row in rows) in flat


def _word(text: str, x: int, y: int, line: int, block: int = 1) -> OcrWord:
    return OcrWord(text, BoundingBox(x, y, 30 * len(text), 50), 95.0, block=block, paragraph=1, line=line)


def test_words_read_column_block_by_column_block_come_out_row_by_row():
    # Tesseract gave the names column, then the ID column, then the title above the table
    cells = [tables.Cell(100, 400, 600, 530), tables.Cell(600, 400, 1200, 530),
             tables.Cell(100, 530, 600, 660), tables.Cell(600, 530, 1200, 660)]
    page = OcrPage(width=1300, height=1000, dpi=DPI, words=[
        _word("An", 150, 440, 1, block=1), _word("Bình", 150, 570, 2, block=1),
        _word("0012", 650, 440, 1, block=2), _word("0341", 650, 570, 2, block=2),
        _word("DANH", 150, 250, 1, block=3), _word("SÁCH", 350, 250, 1, block=3),
        _word("Ghi", 150, 800, 1, block=4),
    ])
    out = tables.reading_order(page, cells, dpi=DPI)
    assert out.text.split() == ["DANH", "SÁCH", "An", "0012", "Bình", "0341", "Ghi"]
    assert sorted((w.text, w.box.left, w.box.top) for w in out.words) == sorted((w.text, w.box.left, w.box.top) for w in page.words)


def test_a_page_without_rules_keeps_its_order():
    page = OcrPage(width=1300, height=1000, dpi=DPI, words=[_word("Căn", 150, 440, 1), _word("cứ", 400, 440, 1)])
    assert tables.reading_order(page, [], dpi=DPI) is page
    assert tables.cells(np.zeros((100, 100), np.uint8), dpi=DPI) == []


def test_a_cells_lines_come_top_to_bottom_whatever_block_tesseract_put_them_in():
    # a header cell "Phí, lệ phí / (nếu có)": Tesseract put its second line in the block of the
    # cell to its left (with a speck there), its first line in a later block
    cells = [tables.Cell(100, 400, 600, 530), tables.Cell(600, 400, 1200, 530)]
    page = OcrPage(width=1300, height=1000, dpi=DPI, words=[
        _word("Địa", 150, 420, 1, block=1), _word("(nếu", 700, 470, 2, block=1), _word("có)", 800, 470, 2, block=1),
        _word("Phí,", 700, 410, 1, block=2), _word("lệ", 780, 410, 1, block=2), _word("phí", 840, 410, 1, block=2),
    ])
    out = tables.reading_order(page, cells, dpi=DPI)
    assert out.text.split() == ["Địa", "Phí,", "lệ", "phí", "(nếu", "có)"]


def _canvas(height: int) -> tuple[Image.Image, ImageDraw.ImageDraw, object]:
    """A white A4-wide page of ``height`` px at DPI, its pen and a 13-pt font."""
    image = Image.new("L", (2480, height), 255)
    return image, ImageDraw.Draw(image), _font(False, int(13 * DPI / 72))


def _cleaned(image: Image.Image, tmp_path) -> clean.CleanedPage:
    path = tmp_path / "page.png"
    image.save(path, dpi=(DPI, DPI))
    return clean.clean_page(path, dpi=DPI, workdir=tmp_path / "w", stem="p", detect_orientation=False)


def _in_order(read: OcrPage, cleaned: clean.CleanedPage) -> str:
    """The reading's text in table order, on one line."""
    return " ".join(tables.reading_order(read, list(cleaned.cells), dpi=cleaned.dpi).text.split())


def test_each_inked_cell_is_read_as_its_own_block(tmp_path):
    # a row whose cells' lines do not line up: a two-line name beside one-line cells set lower
    image, draw, font = _canvas(1400)
    xs, ys = [300, 500, 1500, 2200], [300, 450, 700]
    for y in ys:
        draw.line([(xs[0], y), (xs[-1], y)], fill=0, width=4)
    for x in xs:
        draw.line([(x, ys[0]), (x, ys[-1])], fill=0, width=4)
    for x, text in zip(xs, ("STT", "Tên thủ tục", "Cách thức")):
        draw.text((x + 30, 340), text, font=font, fill=0)
    draw.text((xs[0] + 30, 520), "1", font=font, fill=0)
    draw.text((xs[1] + 30, 470), "Cấp mới giấy phép", font=font, fill=0)
    draw.text((xs[1] + 30, 560), "hành nghề khám bệnh", font=font, fill=0)
    draw.text((xs[2] + 30, 520), "Trực tiếp", font=font, fill=0)
    draw.text((300, 900), "Nơi nhận: như trên", font=font, fill=0)
    cleaned = _cleaned(image, tmp_path)
    assert len(tables.table_cells(list(cleaned.cells))) == 6
    read = page_read.read_cleaned(cleaned)
    # no Tesseract line runs across two cells, and the text under the table is read too
    cell_of = {}
    for w in read.words:
        x, y = w.box.left + w.box.width / 2, w.box.top + w.box.height / 2
        cell = next((c for c in cleaned.cells if c.holds(x, y)), None)
        if cell is not None:
            assert cell_of.setdefault(w.line_key, cell) == cell, w.text
    assert _in_order(read, cleaned) == ("STT Tên thủ tục Cách thức 1 Cấp mới giấy phép hành nghề khám bệnh "
                                        "Trực tiếp Nơi nhận: như trên")


def test_a_table_with_nothing_above_goes_before_the_words_under_it():
    # the page outside the table was read first, its cells after: the table opens the page
    cells = [tables.Cell(100, 100, 600, 230), tables.Cell(600, 100, 1200, 230)]
    page = OcrPage(width=1300, height=1000, dpi=DPI, words=[
        _word("Mẫu", 150, 600, 1, block=1), _word("số", 300, 600, 1, block=1),
        _word("Số", 150, 140, 1, block=2), _word("Tên", 650, 140, 1, block=3),
    ])
    assert tables.reading_order(page, cells, dpi=DPI).text.split() == ["Số", "Tên", "Mẫu", "số"]


def test_a_citizen_id_in_comb_boxes_is_one_word_after_its_label(tmp_path):
    # 12 comb boxes alone after their label, one digit each: one line, one word, not box by box
    image, draw, font = _canvas(1000)
    draw.text((200, 300), "Số định danh cá nhân:", font=font, fill=0)
    for i, digit in enumerate("001203004512"):
        x = 900 + i * 70
        draw.rectangle([x, 280, x + 70, 360], outline=0, width=4)
        draw.text((x + 20, 292), digit, font=font, fill=0)
    draw.text((200, 600), "Họ và tên: Nguyễn Văn An", font=font, fill=0)
    cleaned = _cleaned(image, tmp_path)
    assert len(tables.table_cells(list(cleaned.cells))) == 12
    read = page_read.read_cleaned(cleaned)
    assert _in_order(read, cleaned) == "Số định danh cá nhân: 001203004512 Họ và tên: Nguyễn Văn An"


def test_comb_boxes_in_a_table_read_by_cell_are_one_line(tmp_path):
    # a form's table: a label cell, then 12 comb boxes for the ID on the same row, a name row below
    image, draw, font = _canvas(1000)
    top, bottom, right = 280, 380, 900 + 12 * 80
    draw.rectangle([200, top, right, 500], outline=0, width=4)
    draw.line([(200, bottom), (right, bottom)], fill=0, width=4)
    draw.line([(900, top), (900, bottom)], fill=0, width=4)
    draw.text((230, 300), "Số định danh:", font=font, fill=0)
    for i, digit in enumerate("001203004512"):
        x = 900 + i * 80
        draw.line([(x + 80, top), (x + 80, bottom)], fill=0, width=4)
        draw.text((x + 25, 300), digit, font=font, fill=0)
    draw.text((230, 410), "Họ và tên: Nguyễn Văn An", font=font, fill=0)
    cleaned = _cleaned(image, tmp_path)
    assert len(tables.table_cells(list(cleaned.cells))) == 14
    read = page_read.read_cleaned(cleaned)
    assert _in_order(read, cleaned) == "Số định danh: 001203004512 Họ và tên: Nguyễn Văn An"


def test_comb_letters_join_across_neighbouring_boxes_not_across_an_empty_one():
    def at(text: str, x: int) -> OcrWord:
        return OcrWord(text, BoundingBox(x, 10, 25, 40), 90.0, block=1, paragraph=1, line=1)
    # boxes 80 px apart: "AN" in boxes 0-1, box 2 empty, "BA" in boxes 3-4
    words = [at("A", 25), at("N", 105), at("B", 265), at("A", 345)]
    assert [w.text for w in page_read._comb_words(words, 80.0)] == ["AN", "BA"]
