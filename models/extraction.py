"""Data extraction (Circular 01/2023/TT-VPCP Art. 9): key fields read from a document's OCR words.

Pure functions over ``OcrPage`` words: each value comes back with the page and the pixel box it was
read from and a confidence in 0–1 (the OCR confidence of its words, lowered when the value was
found without the context that usually labels it). Fields:

- ``citizen_id``: 12-digit citizen ID (số định danh cá nhân / CCCD) whose structure checks out:
  province code in the official set, century/sex digit, plausible birth year. Several may be found.
- ``document_number``: number and symbol of an official document ("Số: 264/QĐ-UBND" → ``264/QĐ-UBND``).
- ``document_date``: the document's own date ("…, ngày 27 tháng 9 năm 2018" → ``2018-09-27``).
- ``document_kind``: Quyết định, Đơn đề nghị, Giấy chứng nhận, Biên bản, Tờ khai, Công văn …
- ``issuing_body``: the issuer line of the top-left header block ("SỞ GIÁO DỤC VÀ ĐÀO TẠO").
"""
from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from models.document import OcrPage, OcrWord

FIELDS = ("citizen_id", "document_number", "document_date", "document_kind", "issuing_body")

# Province/city codes of the 12-digit citizen ID (Circular 07/2016/TT-BCA, amended by 59/2021/TT-BCA).
PROVINCE_CODES = frozenset({
    "001", "002", "004", "006", "008", "010", "011", "012", "014", "015", "017", "019", "020", "022", "024",
    "025", "026", "027", "030", "031", "033", "034", "035", "036", "037", "038", "040", "042", "044", "045",
    "046", "048", "049", "051", "052", "054", "056", "058", "060", "062", "064", "066", "067", "068", "070",
    "072", "074", "075", "077", "079", "080", "082", "083", "084", "086", "087", "089", "091", "092", "093",
    "094", "095", "096",
})
# Fourth digit: century of birth and sex (even male, odd female), 0/1 → 1900s, 2/3 → 2000s, …
_CENTURY = {"0": 1900, "1": 1900, "2": 2000, "3": 2000, "4": 2100, "5": 2100, "6": 2200, "7": 2200,
            "8": 2300, "9": 2300}
OLDEST_HOLDER_YEARS = 120

# Document kinds, canonical spelling; titles are matched diacritic-folded and upper-cased.
KINDS = (
    "Quyết định", "Đơn đề nghị", "Đơn xin", "Đơn đăng ký", "Giấy chứng nhận", "Giấy đề nghị", "Giấy ủy quyền",
    "Giấy xác nhận", "Giấy phép", "Giấy khai sinh", "Giấy tiếp nhận hồ sơ và hẹn trả kết quả", "Biên bản",
    "Tờ khai", "Tờ trình", "Công văn", "Thông báo", "Báo cáo", "Kế hoạch", "Hợp đồng", "Nghị quyết",
    "Nghị định", "Thông tư", "Chỉ thị", "Phiếu", "Văn bản",
)
_ID_LABEL = re.compile(r"(cccd|can cuoc|dinh danh|cmnd|chung minh|so id|ma so)")
_NOT_ISSUER = re.compile(r"^(cong hoa|doc lap|s[o6]\s*[:.]|v/v|kinh gui|ve viec|can cu)")


@dataclass(frozen=True)
class ExtractedField:
    """One value read from the OCR: where (page, box in page-image pixels) and how sure (0–1)."""

    name: str
    value: str
    page: int
    box: tuple[int, int, int, int] | None  # left, top, width, height
    confidence: float
    raw: str = ""

    def __post_init__(self) -> None:
        if self.name not in FIELDS:
            raise ValueError(f"unknown field {self.name!r}: expected one of {FIELDS}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} outside 0–1")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"] = list(self.box) if self.box else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ExtractedField:
        box = d.get("box")
        return cls(name=d["name"], value=d["value"], page=int(d["page"]), box=tuple(box) if box else None,
                   confidence=float(d["confidence"]), raw=d.get("raw", ""))


# ----------------------------------------------------------------------------------- text helpers
def fold(text: str) -> str:
    """Lower case, diacritics removed, đ→d; one character per character (offsets carry over)."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch in "đĐ":
            out.append("d")
            continue
        base = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)).lower()
        out.append(base[:1] if base else " ")
    return "".join(out)


@dataclass(frozen=True)
class _Line:
    words: tuple[OcrWord, ...]
    text: str
    starts: tuple[int, ...]  # offset of each word in text

    @property
    def top(self) -> int:
        return min(w.box.top for w in self.words)

    @property
    def left(self) -> int:
        return min(w.box.left for w in self.words)

    def words_in(self, start: int, end: int) -> list[OcrWord]:
        return [w for w, s in zip(self.words, self.starts, strict=True) if s < end and s + len(w.text) > start]


def _lines(page: OcrPage) -> list[_Line]:
    groups: dict[tuple[int, int, int], list[OcrWord]] = {}
    for w in page.words:
        groups.setdefault(w.line_key, []).append(w)
    out = []
    for words in groups.values():
        words.sort(key=lambda w: w.box.left)
        starts, pos = [], 0
        for w in words:
            starts.append(pos)
            pos += len(w.text) + 1
        out.append(_Line(tuple(words), " ".join(w.text for w in words), tuple(starts)))
    out.sort(key=lambda ln: (ln.top, ln.left))
    return out


def _box(words: Sequence[OcrWord]) -> tuple[int, int, int, int] | None:
    if not words:
        return None
    left = min(w.box.left for w in words)
    top = min(w.box.top for w in words)
    right = max(w.box.left + w.box.width for w in words)
    bottom = max(w.box.top + w.box.height for w in words)
    return (left, top, right - left, bottom - top)


def _ocr_conf(words: Sequence[OcrWord]) -> float:
    if not words:
        return 0.0
    return max(0.0, min(1.0, min(w.confidence for w in words) / 100.0))


# ----------------------------------------------------------------------------------- citizen ID
def citizen_id_problem(digits: str, *, today: dt.date | None = None) -> str | None:
    """Why a 12-digit string cannot be a citizen ID (None when its structure is valid)."""
    if not re.fullmatch(r"\d{12}", digits):
        return "not 12 digits"
    if digits[:3] not in PROVINCE_CODES:
        return f"province code {digits[:3]} does not exist"
    year = _CENTURY[digits[3]] + int(digits[4:6])
    this_year = (today or dt.date.today()).year
    if year > this_year or year < this_year - OLDEST_HOLDER_YEARS:
        return f"birth year {year} is not plausible"
    return None


_DIGIT_LIKE = str.maketrans({"O": "0", "o": "0", "D": "0", "l": "1", "I": "1", "|": "1", "S": "5", "B": "8"})
_ID_RUN = re.compile(r"(?<![\w/.-])([0-9OolI|SB][0-9OolI|SB .]{10,16}[0-9OolI|SB])(?![\w/-])")


def _citizen_ids(page_no: int, lines: list[_Line], today: dt.date | None) -> Iterable[ExtractedField]:
    for i, line in enumerate(lines):
        for m in _ID_RUN.finditer(line.text):
            raw = m.group(1)
            if sum(c.isdigit() for c in raw) < 10:
                continue
            if re.search(r"\d{3}[ .]\d{3}[ .]\d{3}(?!\d)", raw) and len(re.sub(r"\D", "", raw)) != 12:
                continue
            digits = re.sub(r"[ .]", "", raw).translate(_DIGIT_LIKE)
            if citizen_id_problem(digits, today=today):
                continue
            words = line.words_in(m.start(1), m.end(1))
            context = fold(line.text[: m.start(1)]) + " " + (fold(lines[i - 1].text) if i else "")
            labelled = bool(_ID_LABEL.search(context))
            cleaned = raw.replace(" ", "").replace(".", "") == digits
            conf = _ocr_conf(words) * (1.0 if labelled else 0.7) * (1.0 if cleaned else 0.8)
            yield ExtractedField("citizen_id", digits, page_no, _box(words), round(conf, 3), raw)


# ------------------------------------------------------------------------------ number and date
_NUMBER = re.compile(
    r"\b(s[oố6])\s*[:.;]?\s*(\d{1,6})\s*/\s*((?:\d{4}\s*/\s*)?[A-ZĐ][A-Za-zĐđ0-9]*(?:\s*-\s*[A-ZĐ][A-Za-zĐđ0-9]*)*)",
    re.IGNORECASE)


def _document_numbers(page_no: int, lines: list[_Line], height: int) -> Iterable[ExtractedField]:
    for line in lines:
        for m in _NUMBER.finditer(line.text):
            label = m.group(1)
            symbol = re.sub(r"\s+", "", m.group(3))
            if not re.search(r"[A-ZĐ]{2}", symbol):
                continue
            value = f"{m.group(2)}/{symbol}"
            words = line.words_in(m.start(), m.end())
            # The document's own number heads its page ("Số: 264/QĐ-UBND"); "số 4869/UBND-SYT" in
            # running text cites another document and is never taken.
            if not (label[:1].isupper() and line.top < height * 0.45):
                continue
            conf = _ocr_conf(words) * (1.0 if page_no == 1 else 0.8)
            yield ExtractedField("document_number", value, page_no, _box(words), round(conf, 3), m.group(0))


# Tolerant of what Tesseract does to this line: "nöày", "tháng 1.năm", "năm-2019", glued "26tháng".
_SEP = r"[\s.,:;\-]*"
_DATE = re.compile(rf"\bn\w?ay{_SEP}(\d{{1,2}}){_SEP}th\w?ng{_SEP}(\d{{1,2}}){_SEP}n\w?m{_SEP}(\d{{4}})")


_PLACE_COMMA = re.compile(r"(?:^|\s)[A-ZĐÂĂÊÔƠƯÀ-Ỹ][^\s\d,;]*(?:\s+[^\s\d,;]+){0,3}\s*,[\s.]*$")


def _dates(page_no: int, lines: list[_Line], height: int) -> Iterable[ExtractedField]:
    """The date a document gives itself: "<Place>, ngày … tháng … năm …" (dates in running text cite others)."""
    for line in lines:
        folded = fold(line.text)
        for m in _DATE.finditer(folded):
            try:
                when = dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
            except ValueError:
                continue
            if not 1945 <= when.year <= 2100:
                continue
            before = line.text[: m.start()].strip(" .,:;'\"-")
            placed = (0 < len(before) <= 40 and before[:1].isupper() and not re.search(r"\d", before)) or bool(
                _PLACE_COMMA.search(line.text[: m.start()]))  # "… Số: 12/QĐ  Đà Nẵng, ngày …" (two columns)
            if not placed:
                continue
            words = line.words_in(m.start(), m.end())
            conf = _ocr_conf(words) * (1.0 if page_no == 1 else 0.9)
            yield ExtractedField("document_date", when.isoformat(), page_no, _box(words), round(conf, 3),
                                 line.text[m.start():m.end()])


# ---------------------------------------------------------------------------------- kind and body
_KIND_FOLDED = sorted(((fold(k).upper(), k) for k in KINDS), key=lambda kv: -len(kv[0]))


def _is_upper(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 4 and sum(c.isupper() for c in letters) >= 0.85 * len(letters)


def _kind_of(text: str) -> str | None:
    """The kind a title line names ("QUYẾT ĐỊNH" → "Quyết định"), or None."""
    if not _is_upper(text):
        return None
    folded = fold(text).upper().strip()
    return next((kind for key, kind in _KIND_FOLDED if folded.startswith(key)), None)


def _kinds(page_no: int, lines: list[_Line], height: int) -> Iterable[ExtractedField]:
    if page_no != 1:
        return
    for line in lines:
        kind = _kind_of(line.text) if line.top <= height * 0.6 else None
        if kind:
            conf = _ocr_conf(line.words[: max(1, len(kind.split()))])
            yield ExtractedField("document_kind", kind, page_no, _box(line.words), round(conf, 3), line.text)
            return
    # An official letter (công văn) has no title, but a "V/v …" subject line under its number.
    for line in lines:
        if line.top < height * 0.4 and re.match(r"\s*v\s*/\s*v\b", fold(line.text)):
            yield ExtractedField("document_kind", "Công văn", page_no, _box(line.words[:1]),
                                 round(0.8 * _ocr_conf(line.words[:1]), 3), line.text)
            return


def _issuing_body(page_no: int, lines: list[_Line], width: int, height: int) -> Iterable[ExtractedField]:
    """The last upper-case line of the top-left header block, above "Số:" (the issuer under its parent)."""
    if page_no != 1:
        return
    block: list[tuple[str, list[OcrWord]]] = []
    for line in lines:
        if line.top > height * 0.3:
            break
        left = [w for w in line.words if w.box.left + w.box.width / 2 < width * 0.5]
        if not left:
            continue
        # Two columns read as one line: keep the issuer's words, not the motto's ("… CỘNG HÒA XÃ HỘI").
        for n, w in enumerate(left):
            if fold(w.text).strip(".,'\"-") in ("cong", "doc") and n:
                left = left[:n]
                break
        left = [w for w in left if fold(w.text).strip(".,'\"-_|")]
        if not left:
            continue
        text = " ".join(w.text for w in left).strip(" .,:;'\"-_|")
        folded = fold(text).strip()
        if re.match(r"s[o6]\s*[:.]", folded) or _kind_of(line.text):
            break  # the issuer stands above the number and the title
        if _NOT_ISSUER.match(folded) or not _is_upper(text):
            continue
        block.append((text, left))
    if block:
        text, words = block[-1]
        text = re.sub(r"[\s_\-–—.]+$", "", text).strip()
        conf = _ocr_conf(words) * (1.0 if len(block) >= 2 else 0.8)
        yield ExtractedField("issuing_body", text, page_no, _box(words), round(conf, 3), text)


# ---------------------------------------------------------------------------------------- entry
def extract_fields(pages: Sequence[tuple[int, OcrPage]], *, today: dt.date | None = None,
                   min_confidence: float = 0.3) -> list[ExtractedField]:
    """Every field found in a document's pages: all valid citizen IDs, the best value of each other field."""
    found: dict[str, list[ExtractedField]] = {name: [] for name in FIELDS}
    for page_no, page in pages:
        lines = _lines(page)
        found["citizen_id"] += _citizen_ids(page_no, lines, today)
        found["document_number"] += _document_numbers(page_no, lines, page.height)
        found["document_date"] += _dates(page_no, lines, page.height)
        found["document_kind"] += _kinds(page_no, lines, page.height)
        found["issuing_body"] += _issuing_body(page_no, lines, page.width, page.height)
    out: list[ExtractedField] = []
    seen_ids: dict[str, ExtractedField] = {}
    for f in found["citizen_id"]:
        if f.confidence >= min_confidence and (f.value not in seen_ids or seen_ids[f.value].confidence < f.confidence):
            seen_ids[f.value] = f
    out += seen_ids.values()
    for name in FIELDS[1:]:
        candidates = [f for f in found[name] if f.confidence >= min_confidence]
        if candidates:
            out.append(max(candidates, key=lambda f: (f.confidence, -f.page)))
    return out


def fields_by_name(fields: Iterable[ExtractedField]) -> dict[str, list[str]]:
    """{field name: [values]} for showing and comparing."""
    out: dict[str, list[str]] = {}
    for f in fields:
        out.setdefault(f.name, []).append(f.value)
    return out
