"""Vietnamese first in the CLI's reports: the labels of statuses, stored files, signatures and extracted fields.

The stable English code stays in brackets, as the rest of the CLI does, so a script or a search of
old logs still finds it.
"""
from __future__ import annotations


STATUS = {"stored": "đã lưu", "already-stored": "đã lưu từ trước", "failed": "lỗi", "spooled": "chờ kho lưu trữ",
          "refused": "không lưu", "needs-case-id": "chưa có mã hồ sơ", "planned": "chờ xử lý"}
STORED_KEYS = {"source": "bản quét gốc", "searchable_pdf": "PDF tìm kiếm được", "ocr_json": "kết quả OCR (JSON)"}
SIGNERS = {"agency": "cơ quan", "operator": "người số hóa"}
FIELDS = {"citizen_id": "số định danh cá nhân (CCCD)", "document_number": "số văn bản",
          "document_date": "ngày văn bản", "document_kind": "loại văn bản", "issuing_body": "cơ quan ban hành"}


def label(table: dict[str, str], code: str | None) -> str:
    """``tiếng Việt (code)``, or the code alone when it has no Vietnamese name here."""
    code = code or "?"
    return f"{table[code]} ({code})" if code in table else code
