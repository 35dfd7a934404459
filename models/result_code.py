"""The digitization result code (mã kết quả số hóa, Circular 01/2023/TT-VPCP Art. 7) of a document.

Shape: ``<case ID>-KQ<10 hex digits>``, e.g. ``000.00.01.H56-181010-0001-KQ3F2A9C1B7D``.
The case ID comes first, so the code says which dossier (and receiving unit and day) it belongs to;
the 10 hex digits are the first 40 bits of the document ID, which is itself derived from the
source file's SHA-256. So the same file ingested again gets the same code (stable), two documents
of one case get different codes (a 40-bit collision inside one dossier is not expected, and the
catalog's unique index would refuse it rather than hide it), and no two cases share a code.
"""
from __future__ import annotations

import re

from models.case_id import CaseId

_CODE = re.compile(r"^(?P<case>.+)-KQ(?P<tag>[0-9A-F]{10})$")
TAG_DIGITS = 10


def result_code_for(case_id: str | CaseId, document_id: str) -> str:
    """The result code of one document of a case (pure: same inputs, same code)."""
    case = CaseId.parse(str(case_id))
    tag = document_id.strip().lower()
    if not re.fullmatch(r"[0-9a-f]{%d,}" % TAG_DIGITS, tag):
        raise ValueError(f"document id {document_id!r} is not a hex digest")
    return f"{case}-KQ{tag[:TAG_DIGITS].upper()}"


def parse_result_code(text: str) -> tuple[CaseId, str] | None:
    """(case ID, tag) of a result code, or None when ``text`` is not one (white space and case tolerated)."""
    m = _CODE.fullmatch(text.strip().upper())
    if not m:
        return None
    try:
        return CaseId.parse(m.group("case")), m.group("tag")
    except Exception:  # noqa: BLE001 - InvalidCaseId: not a result code
        return None
