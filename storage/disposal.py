"""Disposal of records past their retention: proposed by an archivist, approved by another person.

Only an approved list is carried out. Then every object of each case and every stored version of
it (S3 versions and delete markers, the folder store's kept versions) is destroyed, the catalog
forgets the case, and a tombstone keeps what was destroyed (keys, versions, SHA-256), the record's
title and period, the decision's number and date, and who proposed and approved. Each step is an
audit entry; the audit chain itself is never touched, so it still verifies afterwards.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from models import NotFound
from models.policy import Action, Principal, decide
from models.record import MetadataError
from storage.audit import AuditTrail
from storage.catalog_schema import cases, document_fields, documents, pages
from storage.objectstore import ObjectStore, case_prefix
from storage.records import RecordBook

metadata = sa.MetaData()
proposals = sa.Table(
    "disposal_proposals", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("proposer", sa.String(160), nullable=False),
    sa.Column("case_ids", sa.JSON(), nullable=False),
    sa.Column("reason", sa.Text()),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("approver", sa.String(160)),
    sa.Column("decision_number", sa.String(64)),
    sa.Column("decision_date", sa.Date()),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
)
tombstones = sa.Table(
    "disposal_tombstones", metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("proposal_id", sa.Integer(), nullable=False),
    sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("proposer", sa.String(160), nullable=False),
    sa.Column("approver", sa.String(160), nullable=False),
    sa.Column("decision_number", sa.String(64), nullable=False),
    sa.Column("decision_date", sa.Date(), nullable=False),
    sa.Column("record", sa.JSON(), nullable=False),
    sa.Column("destroyed", sa.JSON(), nullable=False),
)


class DisposalRefused(MetadataError):
    """A disposal step that may not happen (not due, held, same person, not approved …)."""

    exit_code = 5


@dataclass(frozen=True)
class Proposal:
    """One disposal list and where it stands: proposed, rejected or done."""

    id: int
    created_at: str
    proposer: str
    case_ids: list[str]
    reason: str | None
    status: str
    approver: str | None
    decision_number: str | None
    decision_date: str | None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _proposal(row: sa.Row) -> Proposal:
    return Proposal(id=row.id, created_at=row.created_at.isoformat(), proposer=row.proposer,
                    case_ids=list(row.case_ids), reason=row.reason, status=row.status, approver=row.approver,
                    decision_number=row.decision_number,
                    decision_date=row.decision_date.isoformat() if row.decision_date else None)


class Disposals:
    """Propose, approve or reject disposal lists; carry out approved ones."""

    def __init__(self, book: RecordBook, store: ObjectStore, audit: AuditTrail) -> None:
        self.book = book
        self.store = store
        self.audit = audit
        self.engine = book.engine

    def _check(self, who: Principal, action: Action, case_id: str) -> None:
        verdict = decide(who, action, case_id=case_id)
        if not verdict.allowed:
            self.audit.append(actor=who.actor, action=f"disposal_{action.value}", outcome=verdict.outcome.value,
                              case_id=case_id, detail=verdict.reason)
            if verdict.status_code == 404:
                raise NotFound(f"Case {case_id} not found.", f"Không tìm thấy hồ sơ {case_id}.")
            raise DisposalRefused(f"{who.name} không có quyền này với hồ sơ {case_id} ({verdict.reason}).",
                                  f"{who.name} may not do this to case {case_id}: {verdict.reason}")

    def _disposable(self, case_id: str, today: dt.date) -> None:
        rec = self.book.record(case_id)
        if rec.legal_hold:
            raise DisposalRefused(f"Hồ sơ {case_id} đang bị tạm giữ ({rec.legal_hold}): không được hủy.",
                                  f"case {case_id} is under a legal hold")
        if rec.due_on is None or rec.due_on > today:
            raise DisposalRefused(f"Hồ sơ {case_id} chưa hết thời hạn lưu trữ ({rec.due_on or 'vĩnh viễn/chưa kết thúc'}).",
                                  f"case {case_id} is not past its retention")

    def propose(self, who: Principal, case_ids: list[str], *, reason: str, today: dt.date | None = None) -> Proposal:
        """An archivist's disposal list of records past their retention and not held."""
        today = today or dt.date.today()
        if not case_ids:
            raise DisposalRefused("Danh sách hủy trống.", "the disposal list is empty")
        for case_id in case_ids:
            self._check(who, Action.MANAGE_RECORDS, case_id)
            self._disposable(case_id, today)
        with self.engine.begin() as conn:
            pid = conn.execute(proposals.insert().values(
                created_at=dt.datetime.now(dt.UTC), proposer=who.actor, case_ids=sorted(set(case_ids)),
                reason=reason, status="proposed").returning(proposals.c.id)).scalar_one()
        self.audit.append(actor=who.actor, action="disposal_propose", outcome="allowed",
                          detail=json.dumps({"proposal": pid, "cases": sorted(set(case_ids))}, ensure_ascii=False))
        return self.get(pid)

    def get(self, proposal_id: int) -> Proposal:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(proposals).where(proposals.c.id == proposal_id)).first()
        if row is None:
            raise NotFound(f"Disposal list {proposal_id} not found.", f"Không có danh sách hủy số {proposal_id}.")
        return _proposal(row)

    def list(self, *, status: str | None = None) -> list[Proposal]:
        q = sa.select(proposals).order_by(proposals.c.id.desc())
        if status:
            q = q.where(proposals.c.status == status)
        with self.engine.connect() as conn:
            return [_proposal(r) for r in conn.execute(q)]

    def reject(self, who: Principal, proposal_id: int, *, reason: str) -> Proposal:
        """The approver turns a list down; nothing is destroyed."""
        p = self.get(proposal_id)
        for case_id in p.case_ids:
            self._check(who, Action.APPROVE_DISPOSAL, case_id)
        self._set_status(p, "proposed", "rejected", approver=who.actor)
        self.audit.append(actor=who.actor, action="disposal_reject", outcome="allowed",
                          detail=json.dumps({"proposal": p.id, "reason": reason}, ensure_ascii=False))
        return self.get(proposal_id)

    def _set_status(self, p: Proposal, old: str, new: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            n = conn.execute(proposals.update().where(proposals.c.id == p.id, proposals.c.status == old).values(
                status=new, decided_at=dt.datetime.now(dt.UTC), **values)).rowcount
        if n != 1:
            raise DisposalRefused(f"Danh sách hủy số {p.id} không còn ở trạng thái chờ duyệt.",
                                  f"disposal list {p.id} is not waiting for approval")

    def approve(self, who: Principal, proposal_id: int, *, decision_number: str, decision_date: dt.date,
                today: dt.date | None = None) -> list[dict[str, Any]]:
        """A second person with the approving role approves: then the list is carried out. Returns tombstones."""
        today = today or dt.date.today()
        p = self.get(proposal_id)
        if p.status != "proposed":
            raise DisposalRefused(f"Danh sách hủy số {p.id} đang ở trạng thái “{p.status}”, không duyệt được.",
                                  f"disposal list {p.id} is {p.status}")
        if who.actor == p.proposer:
            self.audit.append(actor=who.actor, action="disposal_approve", outcome="forbidden",
                              detail=json.dumps({"proposal": p.id, "why": "own proposal"}))
            raise DisposalRefused("Người đề xuất không được tự duyệt danh sách hủy của mình: cần người thứ hai.",
                                  "the proposer cannot approve their own disposal list")
        if not decision_number.strip():
            raise DisposalRefused("Cần số quyết định hủy.", "the decision number is missing")
        for case_id in p.case_ids:
            self._check(who, Action.APPROVE_DISPOSAL, case_id)
            self._disposable(case_id, today)  # a hold put on after the proposal still blocks
        self._set_status(p, "proposed", "approved", approver=who.actor, decision_number=decision_number.strip(),
                         decision_date=decision_date)
        self.audit.append(actor=who.actor, action="disposal_approve", outcome="allowed",
                          detail=json.dumps({"proposal": p.id, "decision": decision_number,
                                             "decision_date": decision_date.isoformat()}, ensure_ascii=False))
        return self.carry_out(proposal_id)

    def carry_out(self, proposal_id: int) -> list[dict[str, Any]]:
        """Destroy each case of an approved list (refused for any other list); resumable."""
        p = self.get(proposal_id)
        if p.status not in ("approved",):
            raise DisposalRefused(f"Danh sách hủy số {p.id} chưa được duyệt: không hủy gì cả.",
                                  f"disposal list {p.id} has not been approved; nothing destroyed")
        done = [self._destroy(p, case_id) for case_id in p.case_ids]
        with self.engine.begin() as conn:
            conn.execute(proposals.update().where(proposals.c.id == p.id).values(status="done"))
        return done

    def _destroy(self, p: Proposal, case_id: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            old = conn.execute(sa.select(tombstones).where(tombstones.c.case_id == case_id)).first()
        try:
            record = self.book.record(case_id).to_dict()
        except NotFound:
            record = dict(old.record) if old else {"case_id": case_id}
        destroyed = self.store.purge_prefix(case_prefix(case_id))  # type: ignore[attr-defined]
        if old is not None:
            destroyed = list(old.destroyed) + destroyed
        stone = {"case_id": case_id, "proposal_id": p.id, "destroyed_at": dt.datetime.now(dt.UTC),
                 "proposer": p.proposer, "approver": p.approver or "", "decision_number": p.decision_number or "",
                 "decision_date": dt.date.fromisoformat(p.decision_date) if p.decision_date else dt.date.today(),
                 "record": {k: record.get(k) for k in ("title", "retention", "closed_on", "start_date", "end_date",
                                                       "document_count", "page_count", "paper_code")},
                 "destroyed": destroyed}
        # The tombstone also lives in the store, outside the destroyed prefix (a rebuilt catalog keeps it).
        self.store.put_bytes(f"tombstones/{case_id}.json", json.dumps(
            {**stone, "destroyed_at": stone["destroyed_at"].isoformat(),
             "decision_date": stone["decision_date"].isoformat()}, ensure_ascii=False, sort_keys=True).encode(),
            content_type="application/json", metadata={"case-id": case_id, "role": "tombstone"})
        with self.engine.begin() as conn:
            doc_pks = list(conn.execute(sa.select(documents.c.id).where(documents.c.case_id == case_id)).scalars())
            if doc_pks and conn.dialect.name == "sqlite":
                conn.execute(sa.text("DELETE FROM pages_fts WHERE rowid IN (SELECT id FROM pages WHERE doc_pk IN "
                                     f"({','.join(str(int(x)) for x in doc_pks)}))"))
            if doc_pks:
                conn.execute(pages.delete().where(pages.c.doc_pk.in_(doc_pks)))
                conn.execute(document_fields.delete().where(document_fields.c.doc_pk.in_(doc_pks)))
            conn.execute(documents.delete().where(documents.c.case_id == case_id))
            conn.execute(cases.delete().where(cases.c.case_id == case_id))
            self.book.forget(conn, case_id)
            conn.execute(tombstones.delete().where(tombstones.c.case_id == case_id))
            conn.execute(tombstones.insert().values(**stone))
        self.audit.append(actor=p.approver or "?", action="dispose", outcome="allowed", case_id=case_id,
                          detail=json.dumps({"proposal": p.id, "decision": p.decision_number, "proposer": p.proposer,
                                             "objects": len(destroyed)}, ensure_ascii=False))
        return {**stone, "destroyed_at": stone["destroyed_at"].isoformat(),
                "decision_date": stone["decision_date"].isoformat()}

    def tombstone(self, case_id: str) -> dict[str, Any] | None:
        """What the disposal of a case kept, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tombstones).where(tombstones.c.case_id == case_id)).first()
        if row is None:
            return None
        return {c: getattr(row, c) for c in row._fields} | {
            "destroyed_at": row.destroyed_at.isoformat(), "decision_date": row.decision_date.isoformat()}


def restore_tombstones(engine: sa.Engine, store: ObjectStore) -> int:
    """Put the tombstones kept in the store (``tombstones/<case>.json``) back into a rebuilt catalog."""
    count = 0
    for key in store.list("tombstones/"):
        try:
            stone = json.loads(store.get_bytes(key))
        except (NotFound, ValueError):
            continue
        with engine.begin() as conn:
            if conn.execute(sa.select(tombstones.c.case_id).where(
                    tombstones.c.case_id == stone["case_id"])).first() is None:
                conn.execute(tombstones.insert().values(
                    **{**stone, "destroyed_at": dt.datetime.fromisoformat(stone["destroyed_at"]),
                       "decision_date": dt.date.fromisoformat(stone["decision_date"])}))
                count += 1
    return count
