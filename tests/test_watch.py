"""The hot folder for real: files trickle into a temporary INBOX while the watcher runs.

The test writes each file the way a slow scanner does (chunks with pauses, one pause longer than
the settle time), runs the real watcher (a thread, or ``sohoa watch`` as a subprocess that is
killed in the middle and restarted) against the real intake flow, and looks where every file
ended: done/, failed/ or needs-case-id/, with its reason, report and page verdicts next to it.
Waits have generous timeouts and never assert on durations.
"""
from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from flows.common import open_archive
from flows.desk import intake
from flows.watch import HotFolder
from tests.test_desk import CASE, DEFAULT, OTHER, sheet, text_page

ROOT = Path(__file__).resolve().parents[1]
WAIT = 240.0  # seconds; a guard against a hung watcher, not a performance assertion


def wait_for(what: str, condition: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def write_slowly(path: Path, data: bytes, *, chunks: int = 4, pause: float = 0.3,
                 long_pause: float | None = None) -> None:
    """Write ``data`` into ``path`` in ``chunks`` pieces, as a scanner does; ``long_pause`` once in the middle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    step = max(1, len(data) // chunks)
    with open(path, "wb") as f:
        for n, start in enumerate(range(0, len(data), step)):
            f.write(data[start:start + step])
            f.flush()
            os.fsync(f.fileno())
            time.sleep(long_pause if long_pause and n == 1 else pause)


def pdf_bytes(pages) -> bytes:
    buf = io.BytesIO()
    pages[0].save(buf, format="PDF", save_all=True, append_images=pages[1:], resolution=200.0)
    return buf.getvalue()


def jpeg_bytes(page) -> bytes:
    buf = io.BytesIO()
    page.save(buf, format="JPEG", quality=80, dpi=(200, 200))
    return buf.getvalue()


def report_of(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".report.json").read_text("utf-8"))


def test_watcher_sorts_every_kind_of_file(prefect_harness, data_dir, tmp_path, caplog):
    inbox, done, failed, held = (tmp_path / n for n in ("inbox", "done", "failed", "needs-case-id"))
    in_flight, most_in_flight = [0], [0]
    lock = threading.Lock()

    def ingest(path: Path, case_id: str | None) -> list[dict]:
        with lock:
            in_flight[0] += 1
            most_in_flight[0] = max(most_in_flight[0], in_flight[0])
        try:
            return intake(files=[str(path)], case_id=case_id, write_check=True)
        finally:
            with lock:
                in_flight[0] -= 1

    folder = HotFolder(inbox=inbox, done=done, failed=failed, needs_case=held, ingest=ingest, workers=2,
                       settle=1.0, poll=0.2, incomplete_grace=4.0)
    stop = threading.Event()
    caplog.set_level(logging.INFO, logger="sohoa.watch")
    service = threading.Thread(target=folder.run, args=(stop,), daemon=True)
    service.start()
    try:
        # A PDF has no %%EOF until its last chunk: the long pause must not make it look finished.
        write_slowly(inbox / CASE / "don.pdf", pdf_bytes([text_page("ALPHA")]), long_pause=1.5)
        write_slowly(inbox / "xap.pdf", pdf_bytes([sheet(OTHER), text_page("BRAVO")]))
        write_slowly(inbox / "roi.jpg", jpeg_bytes(text_page("CHARLIE")))
        (inbox / "rong.pdf").write_bytes(b"")
        write_slowly(inbox / "hong.pdf", "không phải PDF, chỉ là chữ".encode() * 50, chunks=2)
        whole = jpeg_bytes(text_page("DELTA"))
        write_slowly(inbox / "cat.jpg", whole[: len(whole) // 2], chunks=2)
        write_slowly(inbox / "SAI-MA" / "giay.pdf", pdf_bytes([text_page("ECHO")]), chunks=1)
        expected = [done / CASE / "don.pdf", done / "xap.pdf", held / "roi.jpg", failed / "rong.pdf",
                    failed / "hong.pdf", failed / "cat.jpg", failed / "SAI-MA" / "giay.pdf"]
        wait_for("every file to be filed away", lambda: all(p.exists() for p in expected))
    finally:
        stop.set()
        service.join(timeout=WAIT)
    assert not service.is_alive()
    assert not [p for p in inbox.rglob("*") if p.is_file()], "nothing is left behind in INBOX"

    # Stored: the case from the sub-folder; the stack's case from its cover sheet.
    don = report_of(done / CASE / "don.pdf")
    assert don["outcome"] == "done" and [r["status"] for r in don["results"]] == ["stored"]
    assert don["results"][0]["case_id"] == CASE
    assert "trang 1: đạt" in (done / CASE / "don.pdf.check.txt").read_text("utf-8")
    xap = report_of(done / "xap.pdf")
    assert [(r["status"], r["case_id"], r["stack_pages"]) for r in xap["results"]] == [("stored", OTHER, [2])]
    assert f"trang 1: tờ bìa hồ sơ {OTHER}" in (done / "xap.pdf.check.txt").read_text("utf-8")
    archive = open_archive()
    assert [len(archive.manifest_records(c)) for c in (CASE, OTHER)] == [1, 1]

    # No case ID anywhere: held back, not refused as corrupt, with a reason to act on.
    reason = (held / "roi.jpg.reason.txt").read_text("utf-8")
    assert "chưa có mã hồ sơ" in reason and "no case ID" in reason
    assert (held / "roi.jpg.check.txt").exists()

    # Bad input: failed/, with the reason in Vietnamese and English.
    for name, vi, en in (("rong.pdf", "rỗng", "empty"), ("hong.pdf", "không phải PDF", "not a PDF"),
                         ("cat.jpg", "bị hỏng", "damaged"), ("SAI-MA/giay.pdf", "không phải mã hồ sơ",
                                                             "not a case ID")):
        reason = (failed / f"{name}.reason.txt").read_text("utf-8")
        assert vi in reason and en in reason, (name, reason)
        assert report_of(failed / name)["outcome"] == "failed"

    # One log line per file, and never more files at once than the workers.
    lines = [r for r in caplog.records if r.name == "sohoa.watch" and r.levelno == logging.INFO]
    assert len(lines) == len(expected)
    assert sorted(str(r.args[1]) for r in lines) == sorted(
        ["%s/don.pdf" % CASE, "xap.pdf", "roi.jpg", "rong.pdf", "hong.pdf", "cat.jpg", "SAI-MA/giay.pdf"])
    assert most_in_flight[0] <= 2


def _start_service(inbox: Path, env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "cli", "watch", str(inbox), "--case", DEFAULT, "--settle", "0.5",
         "--poll", "0.2", "--grace", "4", "--workers", "1", *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def test_restart_in_the_middle_processes_nothing_twice_and_forgets_nothing(prefect_harness, data_dir, tmp_path):
    from prefect.settings import get_current_settings

    inbox = tmp_path / "inbox"
    env = os.environ | {"PREFECT_API_URL": get_current_settings().api.url, "OMP_THREAD_LIMIT": "1",
                        "PYTHONUNBUFFERED": "1"}
    first = _start_service(inbox, env)
    try:
        write_slowly(inbox / "mot.pdf", pdf_bytes([sheet(CASE), text_page("ALPHA"), text_page("BRAVO")]))
        # The page verdicts land next to the file before OCR is done: kill the service right then.
        # (The file and its verdicts are in INBOX/.processing/<watcher>/ while that watcher has it.)
        wait_for("the page verdicts", lambda: any(inbox.rglob("mot.pdf.check.txt"))
                 or (tmp_path / "done" / "mot.pdf").exists())
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    # A file that arrives while the service is down.
    write_slowly(inbox / "hai.pdf", pdf_bytes([text_page("CHARLIE")]))

    second = _start_service(inbox, env)
    try:
        wait_for("both files in done/", lambda: all((tmp_path / "done" / n).exists() for n in ("mot.pdf", "hai.pdf")))
    finally:
        second.send_signal(signal.SIGTERM)
        log, _ = second.communicate(timeout=120)
    assert second.returncode == 0, log

    mot, hai = report_of(tmp_path / "done" / "mot.pdf"), report_of(tmp_path / "done" / "hai.pdf")
    assert [(r["status"] in ("stored", "already-stored"), r["case_id"]) for r in mot["results"]] == [(True, CASE)]
    assert [(r["status"], r["case_id"]) for r in hai["results"]] == [("stored", DEFAULT)]
    archive = open_archive()
    # Exactly one document each, whatever the kill interrupted.
    assert [r.document_id for r in archive.manifest_records(CASE)] == [mot["results"][0]["document_id"]]
    assert [r.document_id for r in archive.manifest_records(DEFAULT)] == [hai["results"][0]["document_id"]]
    assert archive.manifest_records(CASE)[0].page_count == 2
    assert not [p for p in inbox.rglob("*") if p.is_file()]
    # The second service logged one line per file it handled.
    assert sum(" mot.pdf " in ln or " hai.pdf " in ln for ln in log.splitlines() if "DONE" in ln) == 2


def test_strict_watcher_refuses_a_page_to_rescan(prefect_harness, data_dir, tmp_path):
    inbox = tmp_path / "inbox"
    path = tmp_path / "mo.pdf"
    sheet(CASE).save(path, format="PDF", resolution=200.0)
    text_page("HOTEL", dpi=90).save(path, format="PDF", append=True, resolution=90.0)
    folder = HotFolder(inbox=inbox, done=tmp_path / "done", failed=tmp_path / "failed",
                       ingest=lambda p, c: intake(files=[str(p)], case_id=c, strict=True, write_check=True),
                       settle=0.5, poll=0.2)
    write_slowly(inbox / "mo.pdf", path.read_bytes())
    stop = threading.Event()
    service = threading.Thread(target=folder.run, args=(stop,), kwargs={"max_files": 1}, daemon=True)
    service.start()
    service.join(timeout=WAIT)
    assert not service.is_alive()
    reason = (tmp_path / "failed" / "mo.pdf.reason.txt").read_text("utf-8")
    assert "Cần quét lại: trang 2" in reason and "Rescan needed: page 2" in reason
    assert "QUÉT LẠI" in (tmp_path / "failed" / "mo.pdf.check.txt").read_text("utf-8")
    assert open_archive().manifest_records(CASE) == []


def test_our_own_failure_leaves_a_good_file_in_the_inbox_and_it_is_stored_later(prefect_harness, data_dir,
                                                                                 tmp_path):
    """Regression: Prefect not starting ("Server process did not start") moved a good file to failed/."""
    inbox, done, failed = tmp_path / "inbox", tmp_path / "done", tmp_path / "failed"
    calls = []

    def ingest(path: Path, case_id: str | None) -> list[dict]:
        calls.append(path.name)
        if len(calls) == 1:  # what the hot folder met with two workers and no Prefect server
            raise RuntimeError("Server process did not start")
        return intake(files=[str(path)], case_id=case_id, write_check=True)

    folder = HotFolder(inbox=inbox, done=done, failed=failed, ingest=ingest, default_case=DEFAULT, workers=1,
                       settle=0.3, poll=0.1, retry_delays=(0.5,))
    (inbox / "don.jpg").parent.mkdir(parents=True, exist_ok=True)
    (inbox / "don.jpg").write_bytes(jpeg_bytes(text_page("ALPHA")))
    stop = threading.Event()
    worker = threading.Thread(target=folder.run, args=(stop,), kwargs={"max_files": 1}, daemon=True)
    worker.start()
    wait_for("the file to be filed away", lambda: not worker.is_alive())
    stop.set()
    assert calls == ["don.jpg", "don.jpg"]
    assert not (failed / "don.jpg").exists()
    assert report_of(done / "don.jpg")["results"][0]["status"] == "stored"
