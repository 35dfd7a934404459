"""Accounts, tokens, sessions and the audit trail on SQLite and PostgreSQL (migration 0003)."""
from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage.accounts import AccountError, Accounts
from storage.audit import AuditTrail
from storage.catalog import Catalog
from storage.local import LocalStore

UNIT = "000.00.14.H56"


@pytest.fixture()
def db(catalog_url):
    catalog = Catalog(catalog_url)
    catalog.migrate()
    yield catalog
    catalog.close()


def test_passwords_are_argon2id_and_checked(db):
    accounts = Accounts(db.engine)
    accounts.add_user("lan", role="handler", units=[UNIT.lower()], password="mot-mat-khau-dai")
    with db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT password_hash, units FROM users WHERE name = 'lan'")).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert "mot-mat-khau-dai" not in stored.password_hash
    assert accounts.authenticate("lan", "mot-mat-khau-dai").units == (UNIT,)  # unit letter normalised
    assert accounts.authenticate("lan", "sai") is None
    assert accounts.authenticate("khong-co", "mot-mat-khau-dai") is None
    with pytest.raises(AccountError):
        accounts.add_user("lan", role="handler", units=[UNIT], password="x" * 12)
    with pytest.raises(AccountError):
        accounts.add_user("hai", role="handler", units=["H56"], password="x" * 12)


def test_disabling_ends_sessions_at_once_and_idle_sessions_expire(db):
    accounts = Accounts(db.engine, idle=dt.timedelta(minutes=30))
    user = accounts.add_user("lan", role="handler", units=[UNIT], password="mot-mat-khau-dai")
    cookie, session = accounts.start_session(user)
    assert accounts.session_for(cookie).user.name == "lan"
    with db.engine.connect() as conn:  # only the hash of the cookie is stored
        assert conn.execute(sa.text("SELECT count(*) FROM web_sessions WHERE id_sha256 = :c"), {"c": cookie}).scalar() == 0
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE web_sessions SET last_seen_at = :t"),
                     {"t": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31)})
    assert accounts.session_for(cookie) is None
    cookie, _ = accounts.start_session(user)
    accounts.set_disabled("lan")
    assert accounts.session_for(cookie) is None
    assert accounts.authenticate("lan", "mot-mat-khau-dai") is None


def test_tokens_are_stored_hashed_expire_and_revoke(db):
    accounts = Accounts(db.engine)
    token, secret = accounts.add_token("egov", units=[UNIT], scopes=["read"], expires=dt.timedelta(days=90))
    with db.engine.connect() as conn:
        row = conn.execute(sa.text("SELECT * FROM api_tokens")).one()
    assert secret.split("_")[-1] not in json.dumps([str(v) for v in row])
    assert accounts.token_for(secret).principal().scopes == {"read"}
    assert accounts.token_for(secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE api_tokens SET expires_at = :t"), {"t": dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)})
    assert accounts.token_for(secret) is None
    _, other = accounts.add_token("egov2", units=[UNIT], scopes=["read", "write"])
    assert accounts.token_for(other).principal().scopes == {"read", "write"}
    accounts.revoke_token("egov2")
    assert accounts.token_for(other) is None


def test_audit_chain_detects_altered_and_deleted_entries(db):
    audit = AuditTrail(db.engine)
    for i in range(6):
        audit.append(actor="user:lan", action="view_case", outcome="allowed", case_id=f"{UNIT}-200203-000{i + 1}")
    assert audit.verify() == []
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = 2"))
    assert [(p.seq, p.problem) for p in audit.verify()] == [(2, "altered")]
    with db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_log SET actor = 'user:lan' WHERE seq = 2"))
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 4"))
    assert [(p.seq, p.problem) for p in audit.verify()] == [(4, "missing")]


def test_audit_chain_detects_the_last_entry_cut_off(db):
    audit = AuditTrail(db.engine)
    for _ in range(3):
        audit.append(actor="user:lan", action="search", outcome="allowed")
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_log WHERE seq = 3"))
    assert [p.problem for p in audit.verify()] == ["head_mismatch"]


def test_concurrent_appends_keep_one_chain(db):
    audit = AuditTrail(db.engine)
    errors = []

    def work():
        try:
            for _ in range(15):
                audit.append(actor="token:egov", action="download_searchable", outcome="allowed")
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert [e.seq for e in audit.entries()] == list(range(1, 61))
    assert audit.verify() == []


def test_audit_export_writes_json_lines_per_day_and_again_when_the_day_grew(db, tmp_path):
    audit = AuditTrail(db.engine)
    store = LocalStore(tmp_path / "objects")
    audit.append(actor="user:lan", action="view_case", outcome="allowed", case_id=f"{UNIT}-200203-0001")
    day = dt.datetime.now(dt.UTC).date().isoformat()
    assert audit.export(store) == [f"audit/{day}.jsonl"]
    assert audit.export(store) == []  # nothing new
    audit.append(actor="user:minh", action="view_case", outcome="not_found", case_id=f"{UNIT}-200203-0001")
    assert audit.export(store) == [f"audit/{day}.jsonl"]
    lines = [json.loads(x) for x in store.get_bytes(f"audit/{day}.jsonl").decode().splitlines()]
    assert [(e["seq"], e["actor"], e["outcome"]) for e in lines] == [(1, "user:lan", "allowed"), (2, "user:minh", "not_found")]
    assert lines[1]["prev_sha256"] == lines[0]["sha256"]


def test_drop_all_and_migrate_again(db):
    Accounts(db.engine).add_user("lan", role="handler", units=[UNIT], password="mot-mat-khau-dai")
    db.drop_all()
    db.migrate()
    assert Accounts(db.engine).list_users() == []


def test_opening_the_catalog_again_keeps_this_processs_sqlite_locks(tmp_path):
    """Regression: open_catalog used to open and close the database file, which drops every POSIX
    lock the process holds on it. A WAL connection keeps a shared lock on the file for its whole
    life; without it another process believes it is the last user, checkpoints and resets the WAL,
    and a write it made (a token revoked from the CLI) was lost under the running web app."""
    import subprocess
    import sys

    from storage.config import Settings, open_catalog

    settings = Settings.from_env({"SOHOA_DATA_DIR": str(tmp_path / "data")})
    first = open_catalog(settings)
    db = settings.database_url[len("sqlite:///"):]
    probe = ("import fcntl, os\n"
             f"fd = os.open({db!r}, os.O_RDWR)\n"
             "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 510, 0x40000002, 0)\n"
             "except OSError:\n    print('held')\nelse:\n    print('free')\n")
    with first.engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM users").scalar()  # the connection holds SQLite's shared lock
        before = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
        open_catalog(settings, migrate=False)
        after = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60).stdout
    assert before.strip() == "held"
    assert after.strip() == "held"
    assert (Path(db).stat().st_mode & 0o777) == 0o600
    first.close()
