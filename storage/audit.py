"""The audit trail: who saw or did what to which dossier, append-only and hash-chained.

Each entry holds the SHA-256 of the previous entry; its own hash covers every field. ``verify``
walks the chain and reports a deleted entry (a gap in the sequence, or the head pointing past the
end), an altered entry (its hash no longer matches) or a re-linked one. ``export`` writes one JSON
Lines object per day to the object store (``audit/YYYY-MM-DD.jsonl``), again whenever a day grew.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import sqlalchemy as sa

from storage.objectstore import ObjectStore, sha256_bytes

metadata = sa.MetaData()
audit_log = sa.Table(
    "audit_log", metadata,
    sa.Column("seq", sa.BigInteger(), primary_key=True, autoincrement=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("actor", sa.String(160), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("case_id", sa.String(64)),
    sa.Column("document_id", sa.String(128)),
    sa.Column("object_key", sa.Text()),
    sa.Column("client", sa.String(64)),
    sa.Column("outcome", sa.String(24), nullable=False),
    sa.Column("detail", sa.Text()),
    sa.Column("prev_sha256", sa.String(64), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
)
audit_head = sa.Table(
    "audit_head", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
)
audit_exports = sa.Table(
    "audit_exports", metadata,
    sa.Column("day", sa.String(10), primary_key=True),
    sa.Column("entries", sa.Integer(), nullable=False),
    sa.Column("last_seq", sa.BigInteger(), nullable=False),
    sa.Column("object_key", sa.Text(), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
)

GENESIS = "0" * 64
EXPORT_PREFIX = "audit/"


@dataclass(frozen=True)
class AuditEntry:
    """One line of the trail."""

    seq: int
    at: str  # ISO 8601 UTC, microseconds
    actor: str  # user:NAME, token:NAME, anonymous, or the name tried at a failed sign-in
    action: str
    outcome: str
    case_id: str | None = None
    document_id: str | None = None
    object_key: str | None = None
    client: str | None = None
    detail: str | None = None
    prev_sha256: str = GENESIS
    sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ChainProblem:
    """Something ``verify`` found wrong with the chain."""

    seq: int
    problem: str  # altered, missing, relinked, head_mismatch; against the anchors: cut, rewritten, forged, no_key
    where: str = ""  # the anchor's time or object key

    def message(self) -> str:
        return {
            "altered": f"entry {self.seq} was altered: its content no longer matches its hash",
            "missing": f"entry {self.seq} is missing: the chain skips from before it to after it",
            "relinked": f"entry {self.seq} does not hold the hash of the entry before it",
            "head_mismatch": f"the trail ends at entry {self.seq} but the head records a later or different entry",
            "cut": f"entry {self.seq}, anchored outside the database at {self.where}, is no longer in the trail "
                   "(its end was cut)",
            "rewritten": f"entry {self.seq} differs from the hash anchored outside the database at {self.where} "
                         "(it or an entry before it was rewritten)",
            "forged": f"the anchor {self.where} was not made with the audit key",
            "no_key": "the trail has anchors but the audit key (SOHOA_AUDIT_KEY_FILE) is missing, so they cannot "
                      "be checked",
        }[self.problem]


def entry_hash(prev_sha256: str, fields: dict[str, Any]) -> str:
    """SHA-256 of the previous hash and the entry's fields as canonical JSON."""
    body = json.dumps({k: fields.get(k) for k in _HASHED}, ensure_ascii=False, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256((prev_sha256 + "\n" + body).encode()).hexdigest()


_HASHED = ("seq", "at", "actor", "action", "outcome", "case_id", "document_id", "object_key", "client", "detail")


def _at_text(value: dt.datetime) -> str:
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.isoformat(timespec="microseconds")


class AuditTrail:
    """Append, query, verify and export the trail, on the catalog's engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def append(self, *, actor: str, action: str, outcome: str, case_id: str | None = None,
               document_id: str | None = None, object_key: str | None = None, client: str | None = None,
               detail: str | None = None) -> AuditEntry:
        """Append one entry; concurrent writers (threads, processes, replicas) are serialised by the head row."""
        now = dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            # Take the head's row lock (PostgreSQL) / the write lock (SQLite) before reading it.
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=audit_head.c.seq + 1))
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.sha256).where(audit_head.c.id == 1)).one()
            fields = {"seq": int(head.seq), "at": _at_text(now), "actor": actor[:160], "action": action,
                      "outcome": outcome, "case_id": case_id, "document_id": document_id,
                      "object_key": object_key, "client": (client or None) and client[:64], "detail": detail}
            digest = entry_hash(head.sha256, fields)
            conn.execute(audit_log.insert().values(**{**fields, "at": now}, day=fields["at"][:10],
                                                   prev_sha256=head.sha256, sha256=digest))
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(sha256=digest))
        return AuditEntry(**fields, prev_sha256=head.sha256, sha256=digest)

    @staticmethod
    def _entry(row: sa.Row) -> AuditEntry:
        return AuditEntry(seq=int(row.seq), at=_at_text(row.at), actor=row.actor, action=row.action,
                          outcome=row.outcome, case_id=row.case_id, document_id=row.document_id,
                          object_key=row.object_key, client=row.client, detail=row.detail,
                          prev_sha256=row.prev_sha256, sha256=row.sha256)

    def entries(self, *, case_id: str | None = None, actor: str | None = None, limit: int | None = None,
                newest_first: bool = False) -> list[AuditEntry]:
        """Entries, optionally of one case or one actor."""
        q = sa.select(audit_log)
        if case_id is not None:
            q = q.where(audit_log.c.case_id == case_id)
        if actor is not None:
            q = q.where(audit_log.c.actor == actor)
        q = q.order_by(audit_log.c.seq.desc() if newest_first else audit_log.c.seq)
        if limit:
            q = q.limit(limit)
        with self.engine.connect() as conn:
            return [self._entry(r) for r in conn.execute(q)]

    def count_recent(self, *, action: str, outcome: str, since: dt.datetime, actor: str | None = None,
                     client: str | None = None) -> int:
        """How many entries of this action and outcome since a time, for one actor or client address."""
        q = sa.select(sa.func.count()).select_from(audit_log).where(
            audit_log.c.action == action, audit_log.c.outcome == outcome, audit_log.c.at >= since)
        if actor is not None:
            q = q.where(audit_log.c.actor == actor)
        if client is not None:
            q = q.where(audit_log.c.client == client)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def _walk(self, conn: sa.Connection) -> Iterator[sa.Row]:
        result = conn.execution_options(stream_results=True, yield_per=2000).execute(
            sa.select(audit_log).order_by(audit_log.c.seq))
        yield from result

    def verify(self) -> list[ChainProblem]:
        """Every break in the chain (empty when the trail is intact)."""
        problems: list[ChainProblem] = []
        prev_hash, expected_seq = GENESIS, 1
        with self.engine.connect() as conn:
            for row in self._walk(conn):
                entry = self._entry(row)
                if entry.seq != expected_seq:
                    problems.extend(ChainProblem(s, "missing") for s in range(expected_seq, min(entry.seq, expected_seq + 20)))
                elif entry.prev_sha256 != prev_hash:
                    problems.append(ChainProblem(entry.seq, "relinked"))
                if entry_hash(entry.prev_sha256, entry.to_dict()) != entry.sha256:
                    problems.append(ChainProblem(entry.seq, "altered"))
                prev_hash, expected_seq = entry.sha256, entry.seq + 1
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.sha256).where(audit_head.c.id == 1)).one()
        if head.seq != expected_seq - 1 or head.sha256 != prev_hash:
            problems.append(ChainProblem(expected_seq - 1, "head_mismatch"))
        return problems

    def export(self, store: ObjectStore, *, through: dt.date | None = None) -> list[str]:
        """Write each day that has new entries to ``audit/YYYY-MM-DD.jsonl``; returns the keys written."""
        through = through or dt.datetime.now(dt.UTC).date()
        written: list[str] = []
        with self.engine.connect() as conn:
            days = conn.execute(sa.select(audit_log.c.day, sa.func.count(), sa.func.max(audit_log.c.seq))
                                .where(audit_log.c.day <= through.isoformat())
                                .group_by(audit_log.c.day).order_by(audit_log.c.day)).all()
            done = {r.day: (r.entries, r.last_seq) for r in conn.execute(sa.select(audit_exports))}
        for day, count, last_seq in days:
            if done.get(day) == (count, last_seq):
                continue
            with self.engine.connect() as conn:
                rows = conn.execute(sa.select(audit_log).where(audit_log.c.day == day).order_by(audit_log.c.seq))
                body = "".join(json.dumps(self._entry(r).to_dict(), ensure_ascii=False) + "\n" for r in rows).encode()
            key = f"{EXPORT_PREFIX}{day}.jsonl"
            keep = getattr(store, "keep_version", None)
            if keep is not None:  # the folder store: the earlier export of the day is kept (S3: versioning)
                keep(key)
            store.put_bytes(key, body, content_type="application/x-ndjson", metadata={"role": "audit", "day": day})
            values = {"entries": int(count), "last_seq": int(last_seq), "object_key": key,
                      "sha256": sha256_bytes(body), "exported_at": dt.datetime.now(dt.UTC)}
            with self.engine.begin() as conn:
                if conn.execute(audit_exports.update().where(audit_exports.c.day == day).values(**values)).rowcount == 0:
                    conn.execute(audit_exports.insert().values(day=day, **values))
            written.append(key)
        return written
