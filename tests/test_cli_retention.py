"""The archivists' commands end to end: two people for a disposal, bad input in one sentence, S3 object lock."""
from __future__ import annotations

import datetime as dt
import json
import secrets

from cli.main import main
from flows.common import open_archive
from storage.objectstore import case_prefix
from tests.test_records_disposal import CASE, UNIT, _put_case

DECISION = ["--decision-number", "12/QĐ-UBND", "--decision-date", "2026-12-01"]


def _users() -> None:
    for name, role in (("lan", "archivist"), ("mai", "approver"), ("hoa", "handler")):
        assert main(["user", "add", name, "--role", role, "--unit", UNIT, "--no-password"]) == 0


def test_disposal_by_two_people_on_the_command_line(data_dir, capsys):
    archive = open_archive()
    _put_case(archive.store, archive.catalog, CASE)
    _users()
    capsys.readouterr()
    assert main(["retention", "due", "--unit", UNIT, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []  # not closed yet: never due
    assert main(["record", "set", CASE, "retention=5", "closed_on=2010-06-30", "--as", "lan"]) == 0
    assert main(["record", "set", CASE, "retention=forever", "--as", "lan"]) == 2
    err = capsys.readouterr().err
    assert "Thời hạn lưu trữ “forever” không hợp lệ" in err and "Traceback" not in err
    assert main(["record", "set", CASE, "title=x", "--as", "hoa"]) == 2  # a handler edits no record
    assert main(["retention", "due", "--unit", UNIT, "--json"]) == 0
    assert [r["case_id"] for r in json.loads(capsys.readouterr().out)] == [CASE]
    assert main(["retention", "propose", CASE, "--as", "lan", "--reason", "hết giá trị"]) == 0
    assert main(["retention", "approve", "1", "--as", "lan", *DECISION]) == 5
    assert "Người đề xuất không được tự duyệt" in capsys.readouterr().err
    assert main(["retention", "approve", "1", "--as", "hoa", *DECISION]) == 5
    assert list(archive.store.list(case_prefix(CASE)))
    assert main(["retention", "approve", "1", "--as", "mai", *DECISION]) == 0
    assert archive.store.residue(case_prefix(CASE)) == []
    capsys.readouterr()
    assert main(["retention", "tombstone", CASE]) == 0
    stone = json.loads(capsys.readouterr().out)
    assert (stone["proposer"], stone["approver"], stone["decision_number"]) == ("user:lan", "user:mai", "12/QĐ-UBND")
    assert main(["audit", "verify"]) == 0
    assert main(["record", "show", CASE]) == 7  # the record is gone; its tombstone stays


def test_object_lock_follows_the_record_period_where_the_store_has_it(s3_server, data_dir, monkeypatch, capsys):
    if not s3_server.is_running():
        s3_server.start()
    for var, value in (("SOHOA_S3_ENDPOINT", s3_server.endpoint), ("SOHOA_S3_ACCESS_KEY", s3_server.access_key),
                       ("SOHOA_S3_SECRET_KEY", s3_server.secret_key), ("SOHOA_S3_BUCKET", f"lk-{secrets.token_hex(4)}")):
        monkeypatch.setenv(var, value)
    archive = open_archive()
    _put_case(archive.store, archive.catalog, CASE)
    _users()
    assert main(["retention", "lock", CASE]) == 5  # a bucket made without object lock
    assert "không hỗ trợ khóa lưu giữ" in capsys.readouterr().out
    monkeypatch.setenv("SOHOA_S3_BUCKET", f"lk-{secrets.token_hex(4)}")
    monkeypatch.setenv("SOHOA_S3_OBJECT_LOCK", "true")
    archive = open_archive()
    _put_case(archive.store, archive.catalog, "000.00.14.H56-200203-0120")
    case = "000.00.14.H56-200203-0120"
    closed = dt.date.today() - dt.timedelta(days=365 * 5 - 30)  # due in about a month
    assert main(["record", "set", case, "retention=5", f"closed_on={closed}", "--as", "lan"]) == 0
    assert main(["retention", "lock", case]) == 0
    due = closed.replace(year=closed.year + 5)
    keys = list(archive.store.list(case_prefix(case)))
    assert keys and all(archive.store.locked_until(k).date() == due for k in keys)
