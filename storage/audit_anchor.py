"""Anchors of the audit trail outside the database: each day's head, HMAC'd with a key the database never holds.

The hash chain inside the database (storage/audit.py) shows an entry changed on its own, but not a
trail cut at its end with ``audit_head`` moved back, nor entries rewritten with every later hash
recomputed: whoever can write the database can do both. So, each time the trail is exported, the
head of every exported day — the last entry's sequence number and hash — is written to the object
store as a NEW object ``audit/anchors/<day>/<seq>.json`` (never overwritten: on a versioned S3
bucket with object lock, not even deletable before its retention ends), with an HMAC-SHA256 made
with a key kept beside the signing keys (``SOHOA_AUDIT_KEY_FILE``, default ``<keys dir>/audit-hmac.key``,
or the key itself in ``SOHOA_AUDIT_KEY``). ``verify`` then requires every anchored entry to be in
the database with the anchored hash: a cut tail ("cut") or a rewritten entry ("rewritten") fails,
and an anchor not made with the key ("forged") is reported, not believed.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from models import NotFound
from storage.audit import AuditTrail, ChainProblem, audit_log
from storage.objectstore import ObjectStore

ANCHOR_PREFIX = "audit/anchors/"
KEY_FILE = "audit-hmac.key"


def key_path(data_dir: Path, env: dict[str, str] | None = None) -> Path:
    """``SOHOA_AUDIT_KEY_FILE``, else ``audit-hmac.key`` in ``SOHOA_KEYS_DIR`` or ``<data dir>/keys``."""
    env = dict(os.environ) if env is None else env
    if env.get("SOHOA_AUDIT_KEY_FILE"):
        return Path(env["SOHOA_AUDIT_KEY_FILE"]).expanduser()
    keys = Path(env["SOHOA_KEYS_DIR"]).expanduser() if env.get("SOHOA_KEYS_DIR") else Path(data_dir) / "keys"
    return keys / KEY_FILE


def load_key(data_dir: Path, *, create: bool, env: dict[str, str] | None = None) -> bytes | None:
    """The anchoring key (``SOHOA_AUDIT_KEY``, else its file); made once, owner-only, when ``create``."""
    env = dict(os.environ) if env is None else env
    if env.get("SOHOA_AUDIT_KEY"):
        return env["SOHOA_AUDIT_KEY"].encode()
    path = key_path(data_dir, env)
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            return None
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_hex(32).encode())
    return path.read_bytes().strip()


@dataclass(frozen=True)
class Anchor:
    """One day's head as it was when anchored."""

    day: str
    last_seq: int
    head_sha256: str
    entries: int
    anchored_at: str
    mac: str = ""

    def signed_part(self) -> bytes:
        fields = {k: v for k, v in asdict(self).items() if k != "mac"}
        return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()

    def signed(self, key: bytes) -> Anchor:
        return Anchor(**{**asdict(self), "mac": hmac.new(key, self.signed_part(), hashlib.sha256).hexdigest()})

    def genuine(self, key: bytes) -> bool:
        return hmac.compare_digest(self.signed(key).mac, self.mac)


def object_key(day: str, last_seq: int) -> str:
    return f"{ANCHOR_PREFIX}{day}/{last_seq:012d}.json"


def anchor_days(engine: sa.Engine, store: ObjectStore, key: bytes, *, through: dt.date | None = None) -> list[str]:
    """Write an anchor for every day whose head is not anchored yet; returns the object keys written."""
    through = through or dt.datetime.now(dt.UTC).date()
    with engine.connect() as conn:
        days = conn.execute(sa.select(audit_log.c.day, sa.func.count(), sa.func.max(audit_log.c.seq))
                            .where(audit_log.c.day <= through.isoformat())
                            .group_by(audit_log.c.day).order_by(audit_log.c.day)).all()
        heads = dict(conn.execute(sa.select(audit_log.c.seq, audit_log.c.sha256)
                                  .where(audit_log.c.seq.in_([int(d[2]) for d in days]))).all()) if days else {}
    written = []
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    for day, count, last_seq in days:
        name = object_key(day, int(last_seq))
        if store.exists(name):
            continue  # this head is anchored already; an anchor is never rewritten
        anchor = Anchor(day=day, last_seq=int(last_seq), head_sha256=heads[last_seq], entries=int(count),
                        anchored_at=now).signed(key)
        store.put_bytes(name, json.dumps(asdict(anchor), sort_keys=True).encode(), content_type="application/json",
                        metadata={"role": "audit-anchor", "day": day})
        written.append(name)
    return written


def read_anchors(store: ObjectStore, key: bytes) -> tuple[list[Anchor], list[ChainProblem]]:
    """Every anchor in the store that the key vouches for, and a problem for each one it does not."""
    anchors, problems = [], []
    for name in store.list(ANCHOR_PREFIX):
        try:
            anchor = Anchor(**json.loads(store.get_bytes(name)))
        except NotFound:
            continue
        except (ValueError, TypeError):
            problems.append(ChainProblem(0, "forged", name))
            continue
        if anchor.genuine(key) and name == object_key(anchor.day, anchor.last_seq):
            anchors.append(anchor)
        else:
            problems.append(ChainProblem(anchor.last_seq if isinstance(anchor.last_seq, int) else 0, "forged", name))
    return anchors, problems


def check_anchors(engine: sa.Engine, anchors: list[Anchor]) -> list[ChainProblem]:
    """Each anchored entry must be in the database with the anchored hash."""
    if not anchors:
        return []
    problems = []
    with engine.connect() as conn:
        found: dict[int, str] = {}
        seqs = sorted({a.last_seq for a in anchors})
        for i in range(0, len(seqs), 500):
            found |= dict(conn.execute(sa.select(audit_log.c.seq, audit_log.c.sha256)
                                       .where(audit_log.c.seq.in_(seqs[i:i + 500]))).all())
    for a in sorted(anchors, key=lambda a: a.last_seq):
        if a.last_seq not in found:
            problems.append(ChainProblem(a.last_seq, "cut", a.anchored_at))
        elif found[a.last_seq] != a.head_sha256:
            problems.append(ChainProblem(a.last_seq, "rewritten", a.anchored_at))
    return problems


def verify(trail: AuditTrail, store: ObjectStore, key: bytes | None) -> tuple[list[ChainProblem], int]:
    """The chain inside the database, then the database against the anchors; (problems, anchors checked)."""
    problems = trail.verify()
    if key is None:
        if any(True for _ in store.list(ANCHOR_PREFIX)):
            problems.append(ChainProblem(0, "no_key", ""))
        return problems, 0
    anchors, forged = read_anchors(store, key)
    return problems + forged + check_anchors(trail.engine, anchors), len(anchors)
