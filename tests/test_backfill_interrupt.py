"""Backfill as an archivist meets it in a terminal (issue 9 item 5): Ctrl-C, bad files, quiet screen.

A real ``python -m cli backfill`` subprocess against the session's Prefect test server: it is sent
SIGINT to its whole process group, as a terminal's Ctrl-C does (the OCR programs get it too), and
the report it leaves must match what the store holds, row for row. The stop time is printed (run
with ``-s``); it is measured, never asserted.
"""
from __future__ import annotations

import csv
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from flows.backfill_report import read_rows
from flows.common import open_archive
from tests.test_backfill import make_page, make_tree

REPO = Path(__file__).resolve().parents[1]
PREFECT_LOG_LINE = re.compile(r"\|\s*(INFO|WARNING|ERROR|CRITICAL)\s*\|")


def _env() -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    return os.environ | {"PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(REPO)}


def _stored_documents() -> set[tuple[str, str]]:
    archive = open_archive()
    return {(c, r.document_id) for c in archive.manifest_cases() for r in archive.manifest_records(c)}


def _rows_in_store(rows: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(r["case_id"], r["document_id"]) for r in rows if r["status"] in ("stored", "skipped")}


def test_ctrl_c_stops_at_once_with_a_report_that_matches_the_store(prefect_harness, data_dir, tmp_path):
    files = make_tree(tmp_path / "src", per_case=4, no_case=0)
    report = tmp_path / "report.csv"
    cmd = [sys.executable, "-m", "cli", "backfill", str(tmp_path / "src"), "--report", str(report),
           "--concurrency", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
                            cwd=tmp_path, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while len(read_rows(report)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()
        sent = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal reaches the whole foreground group
        out, err = proc.communicate(timeout=120)
        stopped_after = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    print(f"\nCtrl-C stop time: {stopped_after:.2f} s")
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err and not PREFECT_LOG_LINE.search(err), err
    rows = read_rows(report)
    assert len({r["path"] for r in rows}) == len(rows)  # one row per file
    assert 0 < len(rows) < len(files)
    stored = _stored_documents()
    assert _rows_in_store(rows) == stored  # the report says exactly what the store holds
    assert all(r["status"] in ("stored", "interrupted") for r in rows)
    assert "Stopped on request" in out and str(report) in out

    # The same command again finishes the rest: everything stored once, nothing twice.
    again = subprocess.run(cmd[:-2] + ["--concurrency", "2"], capture_output=True, text=True, env=_env(),
                           cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    final = _stored_documents()
    assert len(final) == len(files)
    assert _rows_in_store(read_rows(report)) == final


def test_bad_files_get_one_line_each_and_the_dry_run_catches_truncation(prefect_harness, data_dir, tmp_path):
    case = tmp_path / "src" / "000.00.14.H56-190312-0004"
    make_page(case / "tot.png", 1)
    good_jpg = make_page(tmp_path / "x.jpg", 2)
    (case / "cut.jpg").write_bytes(good_jpg.read_bytes()[: good_jpg.stat().st_size // 2])
    (case / "header.pdf").write_bytes(b"%PDF-1.4\n")

    dry = subprocess.run([sys.executable, "-m", "cli", "backfill", str(tmp_path / "src"), "--dry-run"],
                         capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=300)
    assert dry.returncode == 0, dry.stderr
    listing = Path(re.search(r"Báo cáo \(report\): (\S+)", dry.stdout).group(1))
    assert listing.parent == data_dir / "reports"
    with open(listing, encoding="utf-8") as f:
        status = {Path(r["path"]).name: r["status"] for r in csv.DictReader(f)}
    assert status == {"tot.png": "would-ingest", "cut.jpg": "unusable", "header.pdf": "unusable"}

    run = subprocess.run([sys.executable, "-m", "cli", "backfill", str(tmp_path / "src")],
                         capture_output=True, text=True, env=_env(), cwd=tmp_path, timeout=600)
    assert run.returncode == 3, run.stdout + run.stderr
    err = run.stderr
    assert "Traceback" not in err and not PREFECT_LOG_LINE.search(err), err
    bad_lines = [line for line in err.splitlines() if "cut.jpg" in line or "header.pdf" in line]
    assert len(bad_lines) == 2 and all(line.startswith("✗ ") for line in bad_lines), err
    # The default report goes under the data dir, its path is printed, nothing lands in the current folder.
    report = Path(re.search(r"Báo cáo \(report\): (\S+)", run.stdout).group(1))
    assert report.parent == data_dir / "reports" and report.is_file()
    assert not list(tmp_path.glob("backfill-*.csv"))
    assert {Path(r["path"]).name: r["status"] for r in read_rows(report)} == {
        "tot.png": "stored", "cut.jpg": "failed", "header.pdf": "failed"}
    # The details (Prefect's lines and tracebacks) are kept in the log file, which the summary names.
    log = data_dir / "logs" / "sohoa.log"
    assert str(log) in run.stdout and "cut.jpg" in log.read_text("utf-8")
