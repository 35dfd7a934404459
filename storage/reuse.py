"""E-copies reused in another case (issue 20): a catalog link row, never a copy of an object.

A citizen who shows the result code of an e-copy digitized before, and their citizen ID, can have
that e-copy attached to a new case of any unit. The link row names the new case, the case the
e-copy was stored for and the document: the new case lists that one document (its stored objects,
under their original keys) and nothing else of the original case.
"""
from __future__ import annotations

import time
import unicodedata

import sqlalchemy as sa

from models import DocumentRecord
from models.result_code import parse_result_code
from storage.catalog import Catalog

metadata = sa.MetaData()
document_links = sa.Table(
    "document_links", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), nullable=False),
    sa.Column("source_case_id", sa.String(64), nullable=False),
    sa.Column("document_id", sa.String(128), nullable=False),
    sa.Column("result_code", sa.String(96), nullable=False),
    sa.Column("linked_by", sa.String(160), nullable=False),
    sa.Column("linked_at", sa.Float(), nullable=False),
)


def document_by_result_code(catalog: Catalog, result_code: str) -> DocumentRecord | None:
    """The stored document carrying this result code (with its extracted fields), or None."""
    parsed = parse_result_code(result_code or "")
    if parsed is None:
        return None
    case_id, tag = parsed
    code = f"{case_id}-KQ{tag}"
    for rec, matched in catalog.find_by_identifier(code, case_prefix=str(case_id)):
        if matched == "result_code" and (rec.result_code or "").upper() == code and rec.case_id == str(case_id):
            return rec
    return None


def citizen_matches(rec: DocumentRecord, citizen_id: str) -> bool:
    """True when ``citizen_id`` is one the document's extracted (or operator-typed) fields carry."""
    typed = unicodedata.normalize("NFC", (citizen_id or "").strip()).replace(" ", "")
    if not typed.isdigit() or len(typed) not in (9, 12):
        return False
    return any(f["name"] == "citizen_id" and str(f["value"]) == typed for f in rec.extracted)


def link(catalog: Catalog, *, case_id: str, rec: DocumentRecord, linked_by: str) -> bool:
    """Attach ``rec`` to ``case_id``; False when it was attached already (the call is idempotent)."""
    with catalog.engine.begin() as conn:
        exists = conn.execute(sa.select(document_links.c.id).where(
            document_links.c.case_id == case_id, document_links.c.source_case_id == rec.case_id,
            document_links.c.document_id == rec.document_id)).first()
        if exists is not None:
            return False
        conn.execute(document_links.insert().values(
            case_id=case_id, source_case_id=rec.case_id, document_id=rec.document_id,
            result_code=rec.result_code or "", linked_by=linked_by[:160], linked_at=time.time()))
    return True


def linked_documents(catalog: Catalog, case_id: str) -> list[tuple[DocumentRecord, str]]:
    """(document, the case it was stored for) of every e-copy reused in ``case_id``, oldest link first."""
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.select(document_links).where(document_links.c.case_id == str(case_id))
                            .order_by(document_links.c.id)).all()
    out = []
    for row in rows:
        rec = next((d for d in catalog.documents_for_case(row.source_case_id)
                    if d.document_id == row.document_id), None)
        if rec is not None:
            out.append((rec, row.source_case_id))
    return out


def linked_document(catalog: Catalog, case_id: str, document_id: str | None) -> tuple[DocumentRecord, str] | None:
    """One e-copy reused in ``case_id`` with its page texts, or None when the case holds no such link."""
    with catalog.engine.connect() as conn:
        row = conn.execute(sa.select(document_links).where(
            document_links.c.case_id == str(case_id), document_links.c.document_id == str(document_id))).first()
    if row is None:
        return None
    for rec in catalog.documents_for_case(row.source_case_id, with_pages=True):
        if rec.document_id == row.document_id:
            return rec, row.source_case_id
    return None

