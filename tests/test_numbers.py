"""Dates and document numbers Tesseract split in two (issue 19: what a case handler searches for)."""
from __future__ import annotations

import pytest

from pipeline.numbers import join_split_numbers, joined


@pytest.mark.parametrize("left, right, whole", [
    ("92/201", "7/NĐ-CP", "92/2017/NĐ-CP"),       # a narrow 1 of the year taken for a word space
    ("23/1", "1/2018", "23/11/2018"),
    ("16/", "12/2021", "16/12/2021"),
    ("l", "07/2021/NĐ-CP", "107/2021/NĐ-CP"),     # a lone leading 1 read as l or I
    ("I", "747/QĐ-BGTVT", "1747/QĐ-BGTVT"),
    ("02/2017/TT", "VPCP.", "02/2017/TT-VPCP."),  # the code's hyphen read as a space
    ("01/2018/QĐ", "TTg", "01/2018/QĐ-TTg"),
])
def test_a_number_read_as_two_words_is_one_again(left, right, whole):
    assert joined(left, right) == whole


@pytest.mark.parametrize("left, right", [
    ("5", "12/2021/NĐ-CP"),         # "Điều 5 12/2021/NĐ-CP": each a word of its own
    ("ngày", "12/2020"),
    ("23/11/2018", "1/2018"),       # the left one is a date already
    ("12/2020,", "5/2021"),         # punctuation between them
    ("123/UBND", "VP"),             # no year: the code may have one part
    ("59/2020/QH14", "CP"),         # a law's code has digits
    ("Điều", "5"),
])
def test_two_words_stay_two(left, right):
    assert joined(left, right) is None


def test_a_reading_is_joined_in_place_within_one_line():
    data = {"text": ["Nghị", "định", "92/201", "7/NĐ-CP", "23/1", "1/2018"],
            "conf": [95, 95, 90, 80, 91, 93], "left": [0, 60, 120, 230, 400, 500], "top": [10, 10, 10, 12, 10, 10],
            "width": [50, 50, 100, 90, 60, 80], "height": [20, 20, 20, 20, 20, 20],
            "block_num": [1] * 6, "par_num": [1] * 6, "line_num": [1, 1, 1, 1, 1, 2]}
    made = join_split_numbers(data)
    assert made == [["92/201 7/NĐ-CP", "92/2017/NĐ-CP"]]  # "23/1" and "1/2018" are on two lines
    assert data["text"] == ["Nghị", "định", "92/2017/NĐ-CP", "", "23/1", "1/2018"]
    assert (data["left"][2], data["top"][2], data["width"][2], data["height"][2]) == (120, 10, 200, 22)
    assert data["conf"][2] == 80


def test_so_before_a_number_is_so_with_its_acute():
    from pipeline.numbers import number_word

    assert number_word("sô", "2637/BGDĐT-VP.") == "số"
    assert number_word("Sô:", "54") == "Số:"
    assert number_word("SÔ:", "12/QĐ-UBND") == "SỐ:"
    for word, following in (("sô", "cô"), ("so", "12"), ("sô", None), ("sổ", "5")):
        assert number_word(word, following) is None
    data = {"text": ["văn", "bản", "sô", "2637/BGDĐT-VP"], "block_num": [1] * 4, "par_num": [1] * 4,
            "line_num": [1] * 4}
    assert join_split_numbers(data) == [["sô", "số"]] and data["text"][2] == "số"
