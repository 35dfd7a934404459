"""Extraction rules (models/extraction.py) and the result code (models/result_code.py): pure, no OCR."""
from __future__ import annotations

import datetime as dt

import pytest

from models import BoundingBox, OcrPage, OcrWord
from models.extraction import ExtractedField, citizen_id_problem, extract_fields, fields_by_name
from models.result_code import parse_result_code, result_code_for

TODAY = dt.date(2026, 11, 29)
W, H = 2480, 3508  # A4 at 300 dpi


def page(lines: list[tuple[int, int, str]], conf: float = 93.0) -> OcrPage:
    """An OCR page from (left px, top px, text) lines; words 40 px apart, one OCR line each."""
    words = []
    for n, (left, top, text) in enumerate(lines):
        x = left
        for token in text.split():
            width = 22 * len(token)
            words.append(OcrWord(text=token, box=BoundingBox(x, top, width, 50), confidence=conf, block=n, line=0))
            x += width + 18
    return OcrPage(width=W, height=H, dpi=300, words=words)


DECISION = page([
    (150, 200, "UỶ BAN NHÂN DÂN"), (1350, 200, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
    (150, 270, "TỈNH TUYÊN QUANG"), (1450, 270, "Độc lập - Tự do - Hạnh phúc"),
    (150, 400, "Số: 264/QĐ-UBND"), (1400, 400, "Tuyên Quang, ngày 27 tháng 9 năm 2018"),
    (900, 600, "QUYẾT ĐỊNH"),
    (300, 700, "Ban hành Kế hoạch triển khai Nghị định số 61/2018/NĐ-CP"),
    (200, 900, "Căn cứ Công văn số 4869/UBND-SYT ngày 26 tháng 7 năm 2020 của UBND tỉnh;"),
])

FORM = page([
    (600, 200, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"), (800, 270, "Độc lập - Tự do - Hạnh phúc"),
    (700, 450, "ĐƠN ĐỀ NGHỊ CẤP GIẤY PHÉP XÂY DỰNG"),
    (200, 600, "Họ và tên: Nguyễn Thị Lan"),
    (200, 700, "Số định danh cá nhân/CCCD: 008189004512"),
    (200, 800, "Số điện thoại: 0912345678. Số tài khoản: 123456789012"),
    (1300, 2800, "Yên Sơn, ngày 05 tháng 3 năm 2023"),
])


def test_decision_fields_with_page_box_and_confidence():
    fields = extract_fields([(1, DECISION)], today=TODAY)
    got = fields_by_name(fields)
    assert got["document_number"] == ["264/QĐ-UBND"]
    assert got["document_date"] == ["2018-09-27"]  # the dated header, not the cited letter's date
    assert got["document_kind"] == ["Quyết định"]
    assert got["issuing_body"] == ["TỈNH TUYÊN QUANG"]
    assert "citizen_id" not in got
    number = next(f for f in fields if f.name == "document_number")
    assert number.page == 1 and number.box is not None
    left, top, width, height = number.box
    assert 140 <= left <= 160 and 395 <= top <= 405 and width > 200
    assert 0.9 <= number.confidence <= 1.0


def test_form_citizen_id_kind_and_date_at_the_bottom():
    got = fields_by_name(extract_fields([(1, FORM)], today=TODAY))
    assert got["citizen_id"] == ["008189004512"]  # the 12-digit account number fails the structure checks
    assert got["document_kind"] == ["Đơn đề nghị"]
    assert got["document_date"] == ["2023-03-05"]
    assert "issuing_body" not in got and "document_number" not in got


def test_ocr_quirks_glued_words_and_letter_o_in_digits():
    p = page([(150, 400, "Số: 1906 /SGDĐT-CTrTT"), (1400, 400, "Đà Nẵng, ngày 26tháng 7 năm 2020"),
              (200, 900, "CCCD số: O79O85012345")])
    got = fields_by_name(extract_fields([(1, p)], today=TODAY))
    assert got["document_number"] == ["1906/SGDĐT-CTrTT"]
    assert got["document_date"] == ["2020-07-26"]
    assert got["citizen_id"] == ["079085012345"]


@pytest.mark.parametrize("digits, problem", [
    ("008189004512", None),
    ("001305001234", None),       # born 2005, female
    ("003189004512", "province code 003 does not exist"),
    ("097189004512", "province code 097 does not exist"),
    ("008489004512", "birth year 2189 is not plausible"),
    ("008099004512", None),       # male, 1999
    ("00818900451", "not 12 digits"),
])
def test_citizen_id_structure(digits, problem):
    assert citizen_id_problem(digits, today=TODAY) == problem


def test_no_date_from_an_impossible_day_and_no_number_from_running_text():
    p = page([(200, 600, "Căn cứ Quyết định số 12/QĐ-UBND ngày 31 tháng 2 năm 2019;")])
    got = fields_by_name(extract_fields([(1, p)], today=TODAY))
    assert "document_date" not in got and "document_number" not in got


def test_field_round_trip_and_validation():
    f = ExtractedField("citizen_id", "008189004512", 2, (1, 2, 3, 4), 0.9, "008189004512")
    assert ExtractedField.from_dict(f.to_dict()) == f
    with pytest.raises(ValueError):
        ExtractedField("favourite_colour", "x", 1, None, 0.5)
    with pytest.raises(ValueError):
        ExtractedField("citizen_id", "x", 1, None, 1.5)


def test_result_code_is_stable_unique_and_carries_the_case():
    doc_a, doc_b = "36f688361beae9b1171a", "36f688361caaaaaaaaaa"
    code = result_code_for(" 000.00.01.h56-181010-0001 ", doc_a)
    assert code == "000.00.01.H56-181010-0001-KQ36F688361B"
    assert result_code_for("000.00.01.H56-181010-0001", doc_a) == code  # same file again: same code
    assert result_code_for("000.00.01.H56-181010-0001", doc_b) != code
    assert result_code_for("000.00.01.H56-181010-0002", doc_a) != code
    case, tag = parse_result_code(code.lower())
    assert str(case) == "000.00.01.H56-181010-0001" and tag == "36F688361B"
    assert parse_result_code("008189004512") is None


def test_issuer_named_so_and_ocr_mangled_dates():
    # Regressions from bench/signing/extract_eval.py: "SỞ …" folds to "so" and was taken for "Số:"; dates that
    # Tesseract bent ("nöày", "năm-2019") or that share a line with the number (two columns read as one).
    p = page([(150, 200, "UBND TỈNH TUYÊN QUANG"), (150, 270, "SỞ TƯ PHÁP CỘNG HÒA XÃ HỘI"),
              (150, 400, "Số: 12/TB-STP Lang Quấn, nöày 5 tháng 5 năm-2019."), (900, 600, "THÔNG BÁO")])
    got = fields_by_name(extract_fields([(1, p)], today=TODAY))
    assert got["issuing_body"] == ["SỞ TƯ PHÁP"]
    assert got["document_date"] == ["2019-05-05"]
    assert got["document_number"] == ["12/TB-STP"]
    assert got["document_kind"] == ["Thông báo"]
    body = page([(200, 900, "phương ngày 19 tháng 6 năm 2015; Luật Đất đai ngày 29 tháng 11 năm 2013")])
    assert "document_date" not in fields_by_name(extract_fields([(1, body)], today=TODAY))
