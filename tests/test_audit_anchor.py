"""Issue 21 item 4: the audit trail anchored outside the database, on SQLite and PostgreSQL, local and S3 stores.

Both attacks of the probe keep the chain inside the database consistent (``AuditTrail.verify`` finds
nothing, which the tests check first); only the anchors show them.
"""
from __future__ import annotations

import datetime as dt
import json

import pytest
import sqlalchemy as sa

from storage import audit_anchor
from storage.audit import AuditTrail, audit_head, audit_log, entry_hash
from storage.catalog import Catalog

KEY = b"k" * 64


@pytest.fixture()
def trail(catalog_url):
    catalog = Catalog(catalog_url)
    catalog.migrate()
    trail = AuditTrail(catalog.engine)
    for i in range(40):
        trail.append(actor=f"user:lan{i % 3}", action="view_case", outcome="refused" if i == 9 else "allowed",
                     case_id="000.00.14.H56-181010-0001", client="10.0.0.7", detail=f"GET /cases/{i}")
    yield trail
    catalog.close()


def cut_tail(trail: AuditTrail, keep: int) -> None:
    """Delete the newest entries and move the head back to the last one kept (the first attack)."""
    with trail.engine.begin() as conn:
        conn.execute(audit_log.delete().where(audit_log.c.seq > keep))
        head = conn.execute(sa.select(audit_log.c.sha256).where(audit_log.c.seq == keep)).scalar_one()
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=keep, sha256=head))


def rewrite(trail: AuditTrail, seq: int) -> None:
    """Turn a refusal into 'allowed' and recompute every later hash with the code's own function (the second)."""
    with trail.engine.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.seq == seq).values(outcome="allowed"))
        rows = conn.execute(sa.select(audit_log).where(audit_log.c.seq >= seq).order_by(audit_log.c.seq)).all()
        prev = conn.execute(sa.select(audit_log.c.sha256).where(audit_log.c.seq == seq - 1)).scalar_one()
        for row in rows:
            entry = AuditTrail._entry(row)
            digest = entry_hash(prev, entry.to_dict())
            conn.execute(audit_log.update().where(audit_log.c.seq == row.seq).values(prev_sha256=prev, sha256=digest))
            prev = digest
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(sha256=prev))


def test_an_anchored_trail_verifies(trail, local_store):
    assert audit_anchor.anchor_days(trail.engine, local_store, KEY)
    assert audit_anchor.anchor_days(trail.engine, local_store, KEY) == []  # a head is anchored once
    problems, anchors = audit_anchor.verify(trail, local_store, KEY)
    assert problems == [] and anchors == 1


def test_a_cut_tail_fails_verification(trail, local_store):
    audit_anchor.anchor_days(trail.engine, local_store, KEY)
    cut_tail(trail, 20)
    assert trail.verify() == []  # the chain inside the database alone sees nothing
    problems, _ = audit_anchor.verify(trail, local_store, KEY)
    assert [(p.seq, p.problem) for p in problems] == [(40, "cut")]
    assert "cut" in problems[0].message()


def test_a_rewritten_entry_fails_verification(trail, local_store):
    audit_anchor.anchor_days(trail.engine, local_store, KEY)
    rewrite(trail, 10)
    assert trail.verify() == []
    assert [e.outcome for e in trail.entries()].count("refused") == 0
    problems, _ = audit_anchor.verify(trail, local_store, KEY)
    assert [(p.seq, p.problem) for p in problems] == [(40, "rewritten")]


def test_anchors_in_seaweedfs_are_write_once_and_a_forged_one_is_not_believed(trail, s3_store):
    [name] = audit_anchor.anchor_days(trail.engine, s3_store, KEY)
    assert name.startswith("audit/anchors/") and s3_store.versioning_enabled()
    anchor = json.loads(s3_store.get_bytes(name))
    # Someone with write access to the store (not the key) replaces the anchor to match a cut trail.
    cut_tail(trail, 20)
    with trail.engine.connect() as conn:
        head = conn.execute(sa.select(audit_log.c.sha256).where(audit_log.c.seq == 20)).scalar_one()
    forged = dict(anchor, last_seq=20, head_sha256=head, entries=20)
    s3_store.put_bytes(name, json.dumps(forged).encode(), metadata={}, content_type="application/json")
    assert len(s3_store.versions(name)) == 2  # the genuine anchor is still a version of the object
    problems, _ = audit_anchor.verify(trail, s3_store, KEY)
    assert ("forged", name) in [(p.problem, p.where) for p in problems]
    # Another anchor made after the cut does not hide it: the genuine one (restored from its version) fails it.
    s3_store.put_bytes(name, json.dumps(anchor).encode(), metadata={}, content_type="application/json")
    audit_anchor.anchor_days(trail.engine, s3_store, KEY)
    problems, anchors = audit_anchor.verify(trail, s3_store, KEY)
    assert anchors == 2 and [(p.seq, p.problem) for p in problems] == [(40, "cut")]


def test_the_key_is_made_once_outside_the_database(tmp_path, monkeypatch):
    monkeypatch.delenv("SOHOA_AUDIT_KEY", raising=False)
    monkeypatch.delenv("SOHOA_AUDIT_KEY_FILE", raising=False)
    monkeypatch.delenv("SOHOA_KEYS_DIR", raising=False)
    assert audit_anchor.load_key(tmp_path, create=False) is None
    key = audit_anchor.load_key(tmp_path, create=True)
    path = tmp_path / "keys" / "audit-hmac.key"
    assert path.stat().st_mode & 0o077 == 0 and len(key) == 64
    assert audit_anchor.load_key(tmp_path, create=True) == key


def test_sohoa_audit_verify_fails_after_either_attack(tmp_path):
    """The real commands: ``audit export`` anchors, then each attack makes ``audit verify`` exit 5."""
    from tests.web_fixtures import run_cli

    for attack in ("cut", "rewrite"):
        data = tmp_path / attack
        env = {"SOHOA_DATA_DIR": str(data)}
        from storage.config import Settings, open_catalog

        catalog = open_catalog(Settings.from_env(env))
        trail = AuditTrail(catalog.engine)
        for i in range(30):
            trail.append(actor="user:lan", action="view_case", outcome="refused" if i == 5 else "allowed",
                         client="10.0.0.7", detail=f"GET /cases/{i}")
        exported = run_cli(env, "audit", "export")
        assert exported.returncode == 0, exported.stderr
        assert f"audit/anchors/{dt.datetime.now(dt.UTC).date()}/" in exported.stdout
        ok = run_cli(env, "audit", "verify")
        assert ok.returncode == 0 and "1" in ok.stdout, ok.stdout + ok.stderr
        cut_tail(trail, 12) if attack == "cut" else rewrite(trail, 6)
        catalog.close()
        bad = run_cli(env, "audit", "verify")
        assert bad.returncode == 5, bad.stdout + bad.stderr
        assert ("cut" if attack == "cut" else "rewritten") in bad.stdout
        key = (data / "keys" / "audit-hmac.key").read_bytes()
        assert key not in (data / "catalog.sqlite3").read_bytes()
