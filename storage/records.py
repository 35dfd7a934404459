"""Archival record metadata in the catalog: defaults from intake and extraction, archivists' edits, holds.

A case's record (models.record.CaseRecord) is computed from what the pipeline stored (documents,
their kinds, page counts and extracted fields), the agency's retention schedule, and the values an
archivist set, which win. Every edit is one audit entry holding the field, the old and the new value.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa

from models import CaseId, DocumentRecord, InvalidCaseId, NotFound
from models.record import (
    CaseRecord,
    DocumentMeta,
    MetadataError,
    clean_value,
    default_title,
    due_date,
    longer,
)
from models.retention import RetentionRules
from storage.audit import AuditTrail
from storage.catalog import Catalog
from storage.objectstore import ObjectStore, case_prefix

RECORD_FORMAT = "sohoa-record/1"

metadata = sa.MetaData()
case_records = sa.Table(
    "case_records", metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("retention", sa.String(16)),
    sa.Column("closed_on", sa.Date()),
    sa.Column("due_on", sa.Date()),
    sa.Column("legal_hold", sa.Text()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
document_records = sa.Table(
    "document_records", metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("document_id", sa.String(128), primary_key=True),
    sa.Column("data", sa.JSON(), nullable=False),
)
# extraction field -> document record field
_FROM_EXTRACTION = {"document_number": "number_symbol", "document_date": "date", "issuing_body": "issuing_body",
                    "document_kind": "kind"}


def _received(case_id: str) -> str | None:
    try:
        received = CaseId.parse(case_id).received
    except InvalidCaseId:
        return None
    return received.isoformat() if received else None


def document_defaults(docs: list[DocumentRecord]) -> list[DocumentMeta]:
    """Each document's record from intake and extraction (the most confident value of each field)."""
    out = []
    for order, doc in enumerate(docs, 1):
        meta = DocumentMeta(document_id=doc.document_id, order=order, page_count=doc.page_count,
                            kind=doc.kind, set_by={"page_count": "intake", "format": "intake"})
        if doc.kind:
            meta.set_by["kind"] = "intake"
        best: dict[str, float] = {}
        for f in doc.extracted:
            name = _FROM_EXTRACTION.get(f.get("name", ""))
            if name and float(f.get("confidence", 0)) > best.get(name, -1.0):
                if name == "kind" and "kind" in meta.set_by and meta.set_by["kind"] == "intake":
                    continue  # the operator's kind stands over a guess from the text
                best[name] = float(f.get("confidence", 0))
                setattr(meta, name, str(f["value"]))
                meta.set_by[name] = "extraction"
        out.append(meta)
    return out


class RecordBook:
    """Reads, edits and holds the archival records of cases, on the catalog's engine."""

    def __init__(self, catalog: Catalog, audit: AuditTrail, rules: RetentionRules,
                 store: ObjectStore | None = None) -> None:
        self.catalog = catalog
        self.engine = catalog.engine
        self.audit = audit
        self.rules = rules
        self.store = store  # when given, every change is also written to cases/<case>/record.json

    @staticmethod
    def record_key(case_id: str) -> str:
        """``cases/<case>/record.json``: what archivists set, kept in the store (the record of truth)."""
        return f"{case_prefix(case_id)}record.json"

    def _publish(self, case_id: str) -> None:
        if self.store is None:
            return
        with self.engine.connect() as conn:
            stored, hold, docs = self._stored(conn, case_id)
        body = {"format": RECORD_FORMAT, "case_id": case_id, "case": stored, "legal_hold": hold, "documents": docs}
        self.store.put_bytes(self.record_key(case_id), json.dumps(body, ensure_ascii=False, sort_keys=True).encode(),
                             content_type="application/json", metadata={"case-id": case_id, "role": "record"})

    def restore(self) -> int:
        """Put back the archivists' values from every ``record.json`` in the store (after a catalog rebuild)."""
        if self.store is None:
            return 0
        count = 0
        for key in self.store.list("cases/"):
            parts = key.split("/")
            if len(parts) != 3 or parts[2] != "record.json":
                continue
            try:
                body = json.loads(self.store.get_bytes(key))
            except (NotFound, ValueError):
                continue
            if body.get("format") != RECORD_FORMAT:
                continue
            case_id = body["case_id"]
            docs = self.catalog.documents_for_case(case_id)
            if not docs:
                continue
            with self.engine.begin() as conn:
                self.forget(conn, case_id)
                for doc_id, data in (body.get("documents") or {}).items():
                    conn.execute(document_records.insert().values(case_id=case_id, document_id=doc_id, data=data))
                data = body.get("case") or {"values": {}, "set_by": {}}
                after = self._compose(case_id, docs, data, body.get("legal_hold"), body.get("documents") or {})
                self._save_case(conn, case_id, data, body.get("legal_hold"), after)
            count += 1
        return count

    # --------------------------------------------------------------------------- reads
    def _stored(self, conn: sa.Connection, case_id: str) -> tuple[dict[str, Any], str | None, dict[str, dict]]:
        row = conn.execute(sa.select(case_records).where(case_records.c.case_id == case_id)).first()
        docs = {r.document_id: dict(r.data or {}) for r in conn.execute(
            sa.select(document_records).where(document_records.c.case_id == case_id))}
        return (dict(row.data or {}) if row else {}), (row.legal_hold if row else None), docs

    def record(self, case_id: str) -> CaseRecord:
        """The case's record: defaults, then what archivists set. NotFound for a case without documents."""
        docs = self.catalog.documents_for_case(case_id)
        if not docs:
            raise NotFound(f"Case {case_id} has no documents in the catalog.",
                           f"Không có hồ sơ {case_id} trong danh mục.")
        with self.engine.connect() as conn:
            stored, hold, doc_stored = self._stored(conn, case_id)
        return self._compose(case_id, docs, stored, hold, doc_stored)

    def _compose(self, case_id: str, docs: list[DocumentRecord], stored: dict[str, Any], hold: str | None,
                 doc_stored: dict[str, dict]) -> CaseRecord:
        metas = document_defaults(docs)
        for meta in metas:
            own = doc_stored.get(meta.document_id, {})
            for name, value in (own.get("values") or {}).items():
                setattr(meta, name, value)
            meta.set_by.update(own.get("set_by") or {})
        values, set_by = dict(stored.get("values") or {}), dict(stored.get("set_by") or {})
        rec = CaseRecord(case_id=case_id, documents=metas, legal_hold=hold)
        rec.document_count = len(metas)
        rec.page_count = sum(m.page_count for m in metas)
        kinds = [m.kind for m in metas if m.kind]
        dates = sorted(m.date for m in metas if m.date)
        created = sorted(d.created_at[:10] for d in docs)
        defaults: dict[str, tuple[Any, str]] = {
            "access_level": ("restricted", "default"),
            "language": ("vi", "default"),
            "reliability": ("digitized", "default"),
            "start_date": ((dates or [_received(case_id) or created[0]])[0], "extraction" if dates else "intake"),
            "end_date": ((dates or created)[-1], "extraction" if dates else "intake"),
            "keywords": (list(dict.fromkeys(kinds)) or None, "intake"),
        }
        for name, (value, who) in defaults.items():
            setattr(rec, name, value)
            set_by[name] = set_by.get(name, who) if name in values else who
        for name, value in values.items():
            setattr(rec, name, value)
        if "title" not in values:
            rec.title = default_title(kinds, rec.procedure, rec.applicant, case_id)
            set_by["title"] = "default"
        if "retention" not in values:
            rec.retention, why = self.rules.period_for(kinds, rec.procedure)
            set_by["retention"] = f"rules:{why}"
        set_by.update({"document_count": "intake", "page_count": "intake", "case_id": "intake"})
        rec.set_by = {k: v for k, v in set_by.items() if k in values or k in defaults or k in
                      ("title", "retention", "document_count", "page_count", "case_id")}
        return rec

    def due(self, *, before: dt.date, units: Collection[str] | None = None) -> list[CaseRecord]:
        """Closed records whose retention ended before ``before`` (holds included: they show why they wait)."""
        q = sa.select(case_records.c.case_id).where(case_records.c.closed_on.is_not(None),
                                                    case_records.c.closed_on < before)
        with self.engine.connect() as conn:
            ids = list(conn.execute(q.order_by(case_records.c.closed_on, case_records.c.case_id)).scalars())
        out = []
        for case_id in ids:
            if units is not None and not any(case_id.startswith(u) for u in units):
                continue
            try:
                rec = self.record(case_id)
            except NotFound:
                continue
            if rec.due_on is not None and rec.due_on < before:
                out.append(rec)
        return out

    # -------------------------------------------------------------------------- writes
    def _save_case(self, conn: sa.Connection, case_id: str, data: dict[str, Any], hold: str | None,
                   effective: CaseRecord) -> None:
        values = data.get("values") or {}
        row = {"data": data, "retention": effective.retention, "legal_hold": hold,
               "closed_on": dt.date.fromisoformat(values["closed_on"]) if values.get("closed_on") else None,
               "due_on": due_date(effective.retention, values.get("closed_on")),
               "updated_at": dt.datetime.now(dt.UTC)}
        if conn.execute(case_records.update().where(case_records.c.case_id == case_id).values(**row)).rowcount == 0:
            conn.execute(case_records.insert().values(case_id=case_id, **row))

    def edit(self, case_id: str, changes: dict[str, Any], *, actor: str, client: str | None = None) -> CaseRecord:
        """Set record fields (None clears one back to its default); one audit entry per changed field."""
        cleaned = {name: clean_value(name, value) for name, value in changes.items()}
        before = self.record(case_id)
        docs = self.catalog.documents_for_case(case_id)
        with self.engine.begin() as conn:
            stored, hold, doc_stored = self._stored(conn, case_id)
            values, set_by = dict(stored.get("values") or {}), dict(stored.get("set_by") or {})
            changed = []
            for name, value in cleaned.items():
                old = getattr(before, name)
                if value is None:
                    values.pop(name, None)
                    set_by.pop(name, None)
                else:
                    values[name] = value
                    set_by[name] = actor
                if old != value:
                    changed.append((name, old, value))
            data = {"values": values, "set_by": set_by}
            after = self._compose(case_id, docs, data, hold, doc_stored)
            self._save_case(conn, case_id, data, hold, after)
        self._publish(case_id)
        for name, old, new in changed:
            self.audit.append(actor=actor, action="record_edit", outcome="allowed", case_id=case_id, client=client,
                              detail=json.dumps({"field": name, "old": old, "new": new}, ensure_ascii=False))
        return after

    def edit_document(self, case_id: str, document_id: str, changes: dict[str, Any], *, actor: str,
                      client: str | None = None) -> CaseRecord:
        """Set a document's record fields; audited with the old value."""
        cleaned = {name: clean_value(name, value, document=True) for name, value in changes.items()}
        before = self.record(case_id)
        old_meta = next((m for m in before.documents if m.document_id == document_id), None)
        if old_meta is None:
            raise NotFound(f"Document {document_id} is not in case {case_id}.",
                           f"Không có tài liệu {document_id} trong hồ sơ {case_id}.")
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(document_records.c.data).where(
                document_records.c.case_id == case_id, document_records.c.document_id == document_id)).first()
            data = dict(row.data) if row else {}
            values, set_by = dict(data.get("values") or {}), dict(data.get("set_by") or {})
            for name, value in cleaned.items():
                if value is None:
                    values.pop(name, None)
                    set_by.pop(name, None)
                else:
                    values[name], set_by[name] = value, actor
            new = {"values": values, "set_by": set_by}
            if row is None:
                conn.execute(document_records.insert().values(case_id=case_id, document_id=document_id, data=new))
            else:
                conn.execute(document_records.update().where(
                    document_records.c.case_id == case_id, document_records.c.document_id == document_id).values(data=new))
        self._publish(case_id)
        after = self.record(case_id)
        new_meta = next(m for m in after.documents if m.document_id == document_id)
        for name in cleaned:
            old, value = getattr(old_meta, name), getattr(new_meta, name)
            if old != value:
                self.audit.append(actor=actor, action="record_edit", outcome="allowed", case_id=case_id,
                                  document_id=document_id, client=client,
                                  detail=json.dumps({"field": name, "old": old, "new": value}, ensure_ascii=False))
        # The case's retention may follow its documents' kinds.
        with self.engine.begin() as conn:
            stored, hold, _ = self._stored(conn, case_id)
            if stored or hold:
                self._save_case(conn, case_id, stored, hold, after)
        return after

    def set_hold(self, case_id: str, reason: str | None, *, actor: str) -> CaseRecord:
        """Put a legal hold on a case (it cannot be disposed of) or lift it (``reason`` None)."""
        if reason is not None and not reason.strip():
            raise MetadataError("Cần ghi lý do tạm giữ.", "a legal hold needs a reason")
        before = self.record(case_id)
        with self.engine.begin() as conn:
            stored, _, _ = self._stored(conn, case_id)
            self._save_case(conn, case_id, stored or {"values": {}, "set_by": {}}, reason, before)
        self._publish(case_id)
        self.audit.append(actor=actor, action="legal_hold" if reason else "legal_hold_lift", outcome="allowed",
                          case_id=case_id, detail=json.dumps({"old": before.legal_hold, "new": reason}, ensure_ascii=False))
        return self.record(case_id)

    def forget(self, conn: sa.Connection, case_id: str) -> None:
        """Remove a disposed case's record rows (its tombstone keeps what the record said)."""
        conn.execute(document_records.delete().where(document_records.c.case_id == case_id))
        conn.execute(case_records.delete().where(case_records.c.case_id == case_id))


__all__ = ["RecordBook", "document_defaults", "longer"]
