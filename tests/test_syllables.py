"""Vietnamese syllable correction from Tesseract's per-letter alternatives (issue 19)."""
from __future__ import annotations

import pytest
from PIL import Image, ImageDraw

from models import OcrPage
from pipeline import ocr, syllables
from pipeline.sample import _font


def _choices(word: str, **alternatives: list[tuple[str, float]]) -> list[list[tuple[str, float]]]:
    """Per letter: the letter read at 92, plus the alternatives given for letter positions p0, p1, ..."""
    return [[(ch, 92.0), *alternatives.get(f"p{i}", [])] for i, ch in enumerate(word)]


def test_the_spelling_rules():
    for good in ("hệ", "quyết", "nghĩa", "giữa", "gì", "khuya", "kiểm", "tất", "thuỷ", "hoà", "chông"):
        assert syllables.well_formed(good), good
    for bad in ("tât̀", "kan", "ngia", "ghà", "tầt", "hêt̃", "qưa", "xyz", "bien"):
        assert not syllables.well_formed(bad), bad
    known = syllables.syllables()
    assert len(known) > 3000 and {"hệ", "tất", "của", "nghĩa"} <= known
    assert all(syllables.well_formed(s) for s in list(known)[:500])


def test_a_wrong_tone_is_fixed_from_an_alternative():
    assert syllables.correct("hê", _choices("hê", p1=[("ệ", 24.7), ("ề", 0.0)])) == "hệ"
    assert syllables.correct("tât,", _choices("tât,", p1=[("ấ", 31.0), ("ậ", 12.0)])) == "tất,"  # punctuation kept


def test_what_is_never_touched():
    # a known syllable, however strong the alternative
    assert syllables.correct("hệ", _choices("hệ", p1=[("ê", 60.0)])) is None
    # names and capitals, numbers and codes
    assert syllables.correct("Hê", _choices("Hê", p1=[("ệ", 40.0)])) is None
    assert syllables.correct("2018", _choices("2018", p0=[("z", 40.0)])) is None
    # an alternative Tesseract hardly considered
    assert syllables.correct("tât", _choices("tât", p1=[("ấ", 1.0)])) is None
    # a well-formed syllable the word list lacks ("chông", a spike) needs a confident alternative
    assert "chông" not in syllables.syllables()
    assert syllables.correct("chông", _choices("chông", p2=[("ố", 12.0)])) is None
    assert syllables.correct("chông", _choices("chông", p2=[("ố", 35.0)])) == "chống"
    # letters and alternatives that do not line up
    assert syllables.correct("hê", [[("h", 90.0)]]) is None


def test_a_vowel_written_twice_is_read_once():
    # "cần" and "Đổi" as Tesseract wrote them on a real 200-dpi letter: the doubled vowel goes, the
    # more confident reading of its marks stays
    assert syllables.correct("cầẦn", _choices("cầẦn")) == "cần"
    assert syllables.correct("Đỗổi", [[("Đ", 95.0)], [("ỗ", 40.0)], [("ổ", 80.0)], [("i", 95.0)]]) == "Đổi"
    # only a known syllable is written, whatever the confidences ("đỗi" is not in the word list)
    assert "đỗi" not in syllables.syllables()
    assert syllables.correct("Đỗổi,", [[("Đ", 95.0)], [("ỗ", 80.0)], [("ổ", 40.0)], [("i", 95.0)], [(",", 90.0)]]) == "Đổi,"
    # a loan rhyme that doubles a vowel is a known word, and consonants are never undoubled
    assert "xoong" in syllables.syllables() or syllables.well_formed("xoong")
    assert syllables.unstutter("xoong", _choices("xoong")) is None
    assert syllables.unstutter("cànn", _choices("cànn")) is None
    # a doubled vowel whose removal makes no known syllable is left alone
    assert syllables.unstutter("qưưz", _choices("qưưz")) is None


def test_a_lost_hat_is_put_back_only_where_one_known_syllable_can_be_meant():
    # the real decisions' headings: "QUYÉT ĐỊNH" is no syllable, "QUYẾT" the only one a hat makes
    assert syllables.repair_hat("QUYÉT") == "QUYẾT"
    assert syllables.repair_hat("quyét,") == "quyết,"
    # a well-formed syllable, known or not, is never touched (the tone, not the hat, may be wrong)
    assert syllables.repair_hat("quyên") is None and syllables.repair_hat("PHÓ") is None
    assert "gôm" not in syllables.syllables() and syllables.repair_hat("gôm") is None
    # codes, abbreviations, foreign words and mixed case
    for word in ("SGTVT", "BCCI", "Website", "iPhone", "2025"):
        assert syllables.repair_hat(word) is None, word


def test_the_eth_is_read_as_the_vietnamese_d_with_stroke():
    data = {"text": ["/QĐÐ-UBND", "GD&ĐÐT", "Ðà", "QUYÉT", "định"]}
    made = syllables.correct_words(data)
    assert data["text"] == ["/QĐ-UBND", "GD&ĐT", "Đà", "QUYẾT", "định"]
    assert made == [["/QĐÐ-UBND", "/QĐ-UBND"], ["GD&ĐÐT", "GD&ĐT"], ["Ðà", "Đà"], ["QUYÉT", "QUYẾT"]]


def test_corrections_are_counted_in_the_ocr_json():
    data = {"text": ["Căn", "cứ", "hê", "thống"], "choices": [
        _choices("Căn"), _choices("cứ"), _choices("hê", p1=[("ệ", 30.0)]), _choices("thống")]}
    made = syllables.correct_words(data)
    assert made == [["hê", "hệ"]] and data["text"][2] == "hệ"
    page = OcrPage(width=10, height=10, dpi=300, corrections=made)
    assert page.to_dict()["corrections"] == [["hê", "hệ"]]
    assert OcrPage.from_dict(page.to_dict()).corrections == made
    assert "corrections" not in OcrPage(width=10, height=10, dpi=300).to_dict()
    # a page read from its reduced copy (a 300-dpi scan read at 225 dpi) keeps them with its boxes
    assert ocr.to_page_scale(page, width=40, height=40, dpi=300).corrections == made


def test_the_in_process_engine_gives_each_letter_its_alternatives(tmp_path, monkeypatch):
    pytest.importorskip("tesserocr")
    from pipeline import ocr_engine

    size = int(13 * 300 / 72)
    img = Image.new("L", (1400, int(1.6 * size)), 255)
    ImageDraw.Draw(img).text((20, 10), "hệ thống thông tin", font=_font(False, size), fill=0)
    path = tmp_path / "line.pgm"
    img.save(path)
    data = ocr_engine.read_words(path, dpi=300, lang="vie", single_line=True)
    assert data["text"] == ["hệ", "thống", "thông", "tin"]
    for text, letters in zip(data["text"], data["choices"]):
        assert [c[0][0] for c in letters] == list(text)  # Tesseract's pick is listed first


def test_a_lost_tone_or_bar_is_put_back_only_where_one_known_syllable_can_be_meant():
    # words the real decisions gave (bench/realscans): not in the word list, one change makes one
    assert syllables.repair_mark("triên") == "triển"
    assert syllables.repair_mark("xuât,") == "xuất,"
    assert syllables.repair_mark("nguôn") == "nguồn"
    # a syllable ending in c, ch, p or t takes sắc or nặng: "Quyêt" is no name, so capitals are mended
    assert not syllables.could_be_a_name("quyêt") and syllables.could_be_a_name("quyết")
    assert syllables.repair_mark("Quyêt") == "Quyết"
    # more than one syllable can be meant: "cấp" or "cập", "chống" or "chồng" or ...
    assert syllables.repair_mark("câp") is None and syllables.repair_mark("chông") is None
    # a capitalised or capital word that could be a name, a known word, unmarked receipt text
    assert syllables.repair_mark("TRIÊN") is None and syllables.repair_mark("Noong") is None
    for word in ("Tiên", "quyên", "VAT", "hop", "SGTVT", "2025", "a"):
        assert syllables.repair_mark(word) is None, word


def test_letters_vietnamese_never_uses_are_read_as_the_ones_meant():
    data = {"text": ["443⁄QĐ-BYT", "24/11⁄2022", "Ÿ", "triên"]}
    made = syllables.correct_words(data)
    assert data["text"] == ["443/QĐ-BYT", "24/11/2022", "Y", "triển"]
    assert len(made) == 4


def test_a_capital_inside_a_word_is_written_small():
    for read, meant in (("khẨn", "khẩn"), ("nghiỆp,", "nghiệp,"), ("triỂn", "triển")):
        assert syllables.inner_capital(read) == meant
    # a capitalised or capital word, a code, a word that is no syllable even in lower case
    for word in ("Khẩn", "KHẨN", "iPhone", "kitÂu", "khẩn"):
        assert syllables.inner_capital(word) is None, word
    data = {"text": ["khẨn", "trương"]}
    assert syllables.correct_words(data) == [["khẨn", "khẩn"]] and data["text"] == ["khẩn", "trương"]


def test_marks_glued_to_a_word_are_stripped_when_a_syllable_remains():
    # from the real pages: a rule's end, a speck, a seal's edge read as part of the word
    for read, meant in (("cấp_", "cấp"), ("_PHÓ", "PHÓ"), ("ngày{†", "ngày"), ("\\THUỘC", "THUỘC"),
                        ("nhận®,", "nhận®,".replace("®", ""))):
        assert syllables.without_junk(read) == meant, read
    # no syllable remains, or nothing to strip, or a mark that stands for a letter (§ for S)
    for read in ("|01", "_câp", "C++", "cấp", "[Mã", "§ở", "a_b", "iP_"):
        assert syllables.without_junk(read) is None, read
    data = {"text": ["cấp_", "xã"]}
    assert syllables.correct_words(data) == [["cấp_", "cấp"]] and data["text"] == ["cấp", "xã"]
