"""Documents found by an identifier (result code, citizen ID, number and symbol), scoped to units.

The surfaces' search calls this beside the full-text search; like ``storage.dossiers``, the units a
principal may read narrow the answer, and each row is checked again before it is returned.
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from models.policy import unit_of
from models.result_code import parse_result_code
from storage.catalog import Catalog

# One token that could be an identifier: a result code, 9/12 digits, or a number and symbol (264/QĐ-UBND).
_CITIZEN_ID = re.compile(r"^\d{9}(\d{3})?$")
_NUMBER_SYMBOL = re.compile(r"^[\w.]+/[\w./-]+$")


@dataclass(frozen=True)
class IdentifierMatch:
    """One document whose result code or extracted value equals the query."""

    case_id: str
    document_id: str
    result_code: str | None
    matched: str
    value: str
    page: int | None
    kind: str | None

    def to_dict(self) -> dict[str, Any]:
        base = f"/api/v1/cases/{self.case_id}/documents/{self.document_id}"
        return {"case_id": self.case_id, "document_id": self.document_id, "result_code": self.result_code,
                "matched": self.matched, "value": self.value, "page": self.page, "kind": self.kind,
                "links": {"self": base, "searchable_pdf": f"{base}/searchable.pdf", "original": f"{base}/original"}}


def looks_like_identifier(query: str) -> bool:
    """True for one token shaped like a result code, a citizen ID or a document's number and symbol."""
    text = unicodedata.normalize("NFC", query.strip())
    if not text or " " in text:
        return False
    return parse_result_code(text) is not None or bool(_CITIZEN_ID.fullmatch(text)) \
        or bool(_NUMBER_SYMBOL.fullmatch(text))


def find_identifier(catalog: Catalog, query: str, *, units: Collection[str], unit: str | None = None,
                    limit: int = 50) -> list[IdentifierMatch]:
    """Documents of ``units`` (narrowed to ``unit``) whose result code or extracted value is ``query``."""
    allowed = set(units) if unit is None else set(units) & {unit}
    if not allowed or not looks_like_identifier(query):
        return []
    value = unicodedata.normalize("NFC", query.strip())
    prefix = next(iter(allowed)) if len(allowed) == 1 else None  # narrows the catalog query when it can
    out: list[IdentifierMatch] = []
    for rec, matched in catalog.find_by_identifier(value, case_prefix=prefix, limit=limit * 4):
        if unit_of(rec.case_id) not in allowed:  # the unit filter: never another unit's row
            continue
        page = None
        shown = rec.result_code or value
        if matched != "result_code":
            field = next((f for f in rec.extracted if f["name"] == matched and f["value"] == value), None)
            page, shown = (field["page"], field["value"]) if field else (None, value)
        out.append(IdentifierMatch(case_id=rec.case_id, document_id=rec.document_id, result_code=rec.result_code,
                                   matched=matched, value=shown, page=page, kind=rec.kind))
        if len(out) >= limit:
            break
    return out
