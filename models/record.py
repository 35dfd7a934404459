"""Archival record metadata of a case (hồ sơ) and its documents (tài liệu), Circular 05/2025/TT-BNV.

Pure data and rules: the field names the circular gives for a record's data ("dữ liệu của hồ sơ lưu
trữ") and a document's, the retention period (permanent or N years, counted from the closing date),
defaults made from what the pipeline already knows, and who set each value.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from models.errors import SohoaError

PERMANENT = "permanent"
ACCESS_LEVELS = {"open": "Mở", "restricted": "Hạn chế", "closed": "Không tiếp cận"}
RELIABILITY = {"digitized": "Số hóa", "born_digital": "Gốc điện tử", "mixed": "Hỗn hợp"}

# Record fields in the circular's order: our name -> the circular's name (Vietnamese).
CASE_FIELDS: dict[str, str] = {
    "case_id": "Mã hồ sơ",
    "title": "Tiêu đề hồ sơ",
    "retention": "Thời hạn lưu trữ",
    "access_level": "Mức độ tiếp cận",
    "language": "Ngôn ngữ",
    "start_date": "Thời gian bắt đầu",
    "end_date": "Thời gian kết thúc",
    "keywords": "Từ khóa",
    "document_count": "Tổng số tài liệu trong hồ sơ",
    "sheets": "Số lượng tờ",
    "page_count": "Số lượng trang",
    "physical_state": "Tình trạng vật lý",
    "info_symbol": "Ký hiệu thông tin",
    "reliability": "Mức độ tin cậy",
    "paper_code": "Mã hồ sơ gốc giấy",
    "backup_mode": "Chế độ lập tài liệu lưu trữ dự phòng",
    "backup_state": "Tình trạng lập tài liệu lưu trữ dự phòng",
}
# Not named by the circular's list but needed to run it: the procedure (for the retention rules)
# and the closing date (a record's retention runs from it).
EXTRA_CASE_FIELDS = {"procedure": "Thủ tục hành chính", "applicant": "Người nộp hồ sơ",
                     "closed_on": "Ngày kết thúc hồ sơ"}
DOCUMENT_FIELDS: dict[str, str] = {
    "order": "Số thứ tự tài liệu trong hồ sơ",
    "number_symbol": "Số và ký hiệu văn bản",
    "date": "Ngày, tháng, năm văn bản",
    "issuing_body": "Cơ quan, tổ chức ban hành",
    "summary": "Trích yếu nội dung",
    "kind": "Tên loại văn bản",
    "page_count": "Số trang",
    "format": "Định dạng",
}
EDITABLE_CASE = frozenset({"title", "retention", "access_level", "language", "start_date", "end_date", "keywords",
                           "sheets", "physical_state", "info_symbol", "reliability", "paper_code", "backup_mode",
                           "backup_state", "procedure", "applicant", "closed_on"})
EDITABLE_DOCUMENT = frozenset({"number_symbol", "date", "issuing_body", "summary", "kind"})
_DATE_FIELDS = frozenset({"start_date", "end_date", "closed_on", "date"})
_INT_FIELDS = frozenset({"sheets"})


class MetadataError(SohoaError):
    """A value an archivist typed that the field cannot take, or a record step refused; says why."""

    exit_code = 2

    def __init__(self, message_vi: str, message_en: str) -> None:
        super().__init__(message_en, message_vi)


def parse_retention(value: str | int) -> str:
    """``"permanent"``/``"vĩnh viễn"`` or a whole number of years (1–100) → canonical text."""
    text = str(value).strip().lower()
    if text in (PERMANENT, "vĩnh viễn", "vinh vien"):
        return PERMANENT
    m = re.fullmatch(r"(\d{1,3})(\s*(y|years?|năm|nam))?", text)
    if not m or not 1 <= int(m.group(1)) <= 100:
        raise MetadataError(f"Thời hạn lưu trữ “{value}” không hợp lệ: ghi “vĩnh viễn” hoặc số năm từ 1 đến 100.",
                            f"retention {value!r} is not 'permanent' or 1-100 years")
    return str(int(m.group(1)))


def retention_label(value: str | None) -> str:
    """Vietnamese label of a retention period."""
    if not value:
        return ""
    return "Vĩnh viễn" if value == PERMANENT else f"{value} năm"


def longer(a: str | None, b: str | None) -> str | None:
    """The longer of two retention periods (permanent beats any number)."""
    if a is None or b is None:
        return a or b
    if PERMANENT in (a, b):
        return PERMANENT
    return a if int(a) >= int(b) else b


def due_date(retention: str | None, closed_on: str | None) -> dt.date | None:
    """The day a record's retention ends (closing date + N years); None when permanent or still open."""
    if not retention or retention == PERMANENT or not closed_on:
        return None
    start = dt.date.fromisoformat(closed_on)
    years = int(retention)
    try:
        return start.replace(year=start.year + years)
    except ValueError:  # 29 February
        return start.replace(year=start.year + years, day=28)


def clean_value(name: str, value: Any, *, document: bool = False) -> Any:
    """Check and normalise one typed value (None or "" clears the field)."""
    allowed = EDITABLE_DOCUMENT if document else EDITABLE_CASE
    if name not in allowed:
        raise MetadataError(f"Trường “{name}” không sửa được.", f"field {name!r} cannot be edited")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if name == "retention":
        return parse_retention(value)
    if name in _DATE_FIELDS:
        try:
            return dt.date.fromisoformat(str(value).strip()).isoformat()
        except ValueError:
            raise MetadataError(f"Ngày “{value}” không hợp lệ: ghi theo dạng NNNN-TT-NN.",
                                f"date {value!r} is not YYYY-MM-DD") from None
    if name in _INT_FIELDS:
        try:
            n = int(str(value).strip())
        except ValueError:
            n = -1
        if n < 0:
            raise MetadataError(f"“{value}” không phải số tờ.", f"{value!r} is not a number of sheets")
        return n
    if name == "access_level" and value not in ACCESS_LEVELS:
        raise MetadataError(f"Mức độ tiếp cận phải là một trong {', '.join(ACCESS_LEVELS)}.",
                            f"access level must be one of {sorted(ACCESS_LEVELS)}")
    if name == "reliability" and value not in RELIABILITY:
        raise MetadataError(f"Mức độ tin cậy phải là một trong {', '.join(RELIABILITY)}.",
                            f"reliability must be one of {sorted(RELIABILITY)}")
    if name == "keywords":
        words = value if isinstance(value, list) else str(value).split(";")
        return [w.strip() for w in words if str(w).strip()] or None
    text = str(value).strip()
    if len(text) > 1000:
        raise MetadataError("Giá trị quá dài (tối đa 1000 ký tự).", "value longer than 1000 characters")
    return text


@dataclass
class DocumentMeta:
    """One document's archival data; ``set_by`` names who gave each value (extraction, user:NAME …)."""

    document_id: str
    order: int
    number_symbol: str | None = None
    date: str | None = None
    issuing_body: str | None = None
    summary: str | None = None
    kind: str | None = None
    page_count: int = 0
    format: str = "application/pdf"
    set_by: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DocumentMeta:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


@dataclass
class CaseRecord:
    """A case's archival data (hồ sơ lưu trữ), its documents', legal hold and who set what."""

    case_id: str
    title: str | None = None
    retention: str | None = None
    access_level: str | None = None
    language: str | None = None
    start_date: str | None = None
    end_date: str | None = None
    keywords: list[str] | None = None
    document_count: int = 0
    sheets: int | None = None
    page_count: int = 0
    physical_state: str | None = None
    info_symbol: str | None = None
    reliability: str | None = None
    paper_code: str | None = None
    backup_mode: str | None = None
    backup_state: str | None = None
    procedure: str | None = None
    applicant: str | None = None
    closed_on: str | None = None
    legal_hold: str | None = None  # the reason, when a hold blocks disposal
    set_by: dict[str, str] = field(default_factory=dict)
    documents: list[DocumentMeta] = field(default_factory=list)

    @property
    def due_on(self) -> dt.date | None:
        """When the retention ends (None: permanent, unknown or not closed)."""
        return due_date(self.retention, self.closed_on)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["documents"] = [doc.to_dict() for doc in self.documents]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CaseRecord:
        docs = [DocumentMeta.from_dict(x) for x in d.get("documents") or []]
        rec = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "documents"})
        rec.documents = docs
        return rec

    def circular_fields(self) -> list[tuple[str, str, Any]]:
        """(our name, the circular's name, value) of every record field, the empty ones too."""
        out = []
        for name, label in {**CASE_FIELDS, **EXTRA_CASE_FIELDS}.items():
            value = getattr(self, name)
            if name == "retention":
                value = retention_label(value)
            elif name == "access_level" and value:
                value = ACCESS_LEVELS[value]
            elif name == "reliability" and value:
                value = RELIABILITY[value]
            elif name == "keywords" and value:
                value = "; ".join(value)
            out.append((name, label, value))
        return out


def default_title(kinds: list[str], procedure: str | None, applicant: str | None, case_id: str) -> str:
    """"Hồ sơ <procedure or kinds> của <applicant>"; the case ID stands in for an unknown applicant."""
    what = procedure or ", ".join(dict.fromkeys(k for k in kinds if k)) or "thủ tục hành chính"
    who = f"của {applicant}" if applicant else f"số {case_id}"
    return f"Hồ sơ {what} {who}"


def package_file_name(case_id: str, order: int, ext: str) -> str:
    """Archive file name of a digitized document: case code, then its order in the case (``<case>.001.pdf``)."""
    return f"{case_id}.{order:03d}.{ext.lstrip('.').lower()}"
