"""The desk's intake service for real: durable jobs, page verdicts, replacing a page, crashes and restarts.

Everything runs against the real parts: the SQLite catalog with its migrations, the job folder on
disk, the preflight and OCR pipeline, and the session's Prefect test server (the service's flow runs
are looked up there). The restart test runs ``sohoa service`` as a subprocess and kills it with
SIGKILL while it is storing. Waits have generous timeouts; no test asserts on a duration.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from flows import service as service_module
from flows.common import open_archive
from flows.check_lane import CheckLane
from flows.service import IntakeService, open_job_store
from models import UploadTooLarge
from models.jobs import CHECKED, PROCESSING, STORED, WAITING
from pipeline.reader import sha256_of
from storage.job_pages import replace_page
from tests.test_desk import CASE, DEFAULT, sheet, text_page, write_stack

ROOT = Path(__file__).resolve().parents[1]
WAIT = 240.0  # a guard against a hung service, not a performance assertion
DPI = 200


def wait_for(what: str, condition: Callable[[], object], timeout: float = WAIT, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(step)


def jpeg_page(path: Path, marker: str, *, blur: float = 0.0) -> Path:
    """A one-page JPEG scan at 200 dpi with ``marker`` on it; ``blur`` = Gaussian sigma in pixels."""
    pixels = np.array(text_page(marker, dpi=DPI))
    if blur:
        pixels = cv2.GaussianBlur(pixels, (0, 0), blur)
    Image.fromarray(pixels).save(path, format="JPEG", quality=85, dpi=(DPI, DPI))
    return path


def pdf_text(data_dir: Path, key: str) -> str:
    return subprocess.run(["pdftotext", str(data_dir / "objects" / key), "-"], capture_output=True, text=True,
                          check=True).stdout


def prefect_runs(name: str) -> list:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name])))


@pytest.fixture
def service(prefect_harness, data_dir):
    svc = IntakeService(workers=1, check_workers=2, jobs=2).start()
    assert svc.wait_ready(WAIT), svc.prefect_error
    yield svc
    svc.stop()


@pytest.fixture
def page_reads(monkeypatch):
    """Count every page the pipeline reads from a scan file and every page it preflights, in this process."""
    from pipeline import document, preflight

    counts = {"read": 0, "preflight": 0}
    lock = threading.Lock()
    real_read, real_preflight = document.read_pages, preflight.preflight

    def read_pages(*args, **kwargs):
        for raw in real_read(*args, **kwargs):
            with lock:
                counts["read"] += 1
            yield raw

    def counted_preflight(*args, **kwargs):
        with lock:
            counts["preflight"] += 1
        return real_preflight(*args, **kwargs)

    monkeypatch.setattr(document, "read_pages", read_pages)
    monkeypatch.setattr(preflight, "preflight", counted_preflight)
    return counts


# ----------------------------------------------------------------------------------- the job store
def test_an_upload_is_hashed_while_streaming_and_an_unfinished_one_leaves_nothing(data_dir):
    store = open_job_store()
    body = os.urandom(3 * 1024 * 1024 + 17)
    with store.upload() as up:
        up.add_stream("../../ho so/trang 1.jpg", (body[i:i + 65536] for i in range(0, len(body), 65536)))
        job = store.commit(up, case_id=DEFAULT, operator="an")
    [f] = job.files
    assert f.name == "trang 1.jpg"  # the folder part of a hostile name is dropped
    assert f.size == len(body)
    assert f.sha256 == sha256_of(store.job_dir(job.id) / f.path)
    assert store.require(job.id).status == "received"

    # A client that goes away mid-upload, and one over the limit: no job, no file left behind.
    def broken():
        yield b"x" * 1000
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError), store.upload() as up:
        up.add_stream("a.pdf", broken())
    with pytest.raises(UploadTooLarge), store.upload(limit=10_000) as up:
        up.add_stream("b.pdf", iter([b"y" * 6000, b"y" * 6000]))
    assert not any((store.root / ".incoming").iterdir())
    assert [j.id for j in store.list_jobs()] == [job.id]

    # What a killed process left: a half-written upload and a job folder whose row was never inserted.
    stale = store.root / ".incoming" / "deadbeef"
    (stale / "files" / "01").mkdir(parents=True)
    (stale / "files" / "01" / "half.pdf").write_bytes(b"%PDF-1.7 half")
    orphan = store.root / ("a" * 32)
    orphan.mkdir()
    old = time.time() - 3600
    for p in (stale / "files" / "01" / "half.pdf", stale / "files" / "01", stale / "files", stale, orphan):
        os.utime(p, (old, old))
    assert store.discard_stale_uploads(older_than=600) == 2
    assert not stale.exists() and not orphan.exists()
    assert store.job_dir(job.id).is_dir()  # a real job is never touched


def test_the_check_lane_lets_every_upload_s_first_page_go_before_anyone_s_second_page():
    """One place: while upload A's page 1 is checked, A's page 2, then B's and C's page 1 ask; B and C go first."""
    lane = CheckLane(1)
    a, b, c = lane.job(), lane.job(), lane.job()
    order: list[str] = []
    release = threading.Event()

    def check(gate, k: int, name: str, hold: threading.Event | None = None) -> None:
        with gate(k):
            order.append(name)
            if hold is not None:
                hold.wait(WAIT)

    first = threading.Thread(target=check, args=(a, 1, "A1", release))
    first.start()
    wait_for("A1 checked", lambda: order == ["A1"])
    threads = []
    for gate, k, name in ((a, 2, "A2"), (b, 1, "B1"), (c, 1, "C1")):
        threads.append(threading.Thread(target=check, args=(gate, k, name)))
        threads[-1].start()
        wait_for(f"{name} waiting", lambda n=len(threads): lane.pending == 1 + n)
    release.set()
    for t in [first, *threads]:
        t.join(WAIT)
    assert order == ["A1", "B1", "C1", "A2"]
    assert lane.pending == 0


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="the OCR is lowered through Linux's /proc")
def test_a_page_check_lowers_the_ocr_in_flight_and_nothing_else(data_dir, tmp_path, monkeypatch):
    """A checked page's place in the lane lowers this process's Tesseract processes to SOHOA_OCR_NICE's
    niceness (10); other children keep theirs. The OCR is otherwise at the service's own priority."""
    import shutil

    fake = tmp_path / "tesseract"  # a stand-in with Tesseract's process name
    shutil.copy(shutil.which("sleep"), fake)
    ocr = subprocess.Popen([str(fake), "60"])
    other = subprocess.Popen([shutil.which("sleep"), "60"])
    try:
        own = os.getpriority(os.PRIO_PROCESS, 0)
        assert os.getpriority(os.PRIO_PROCESS, ocr.pid) == own
        monkeypatch.delenv("SOHOA_OCR_NICE", raising=False)
        svc = IntakeService(warm_prefect=False)  # not started: only its check lane is used
        try:
            with svc.check_lane.job()(1):
                pass
        finally:
            svc.stop()
        assert os.getpriority(os.PRIO_PROCESS, ocr.pid) == max(own, 10)
        assert os.getpriority(os.PRIO_PROCESS, other.pid) == own
    finally:
        for p in (ocr, other):
            p.kill()
            p.wait()


def test_a_lease_has_one_owner_and_a_dead_owner_on_this_host_is_replaced(data_dir, tmp_path):
    from storage.jobs import this_host

    store = open_job_store()
    job = store.create([jpeg_page(tmp_path / "p.jpg", "ALPHA")], case_id=DEFAULT, operator="an")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    first = f"{this_host()}:{dead.pid}:aaaa"
    assert store.claim(job.id, first, lease=600)
    assert not store.claim(job.id, f"{this_host()}:{os.getpid()}:bbbb", lease=600)
    assert job.id not in store.due_jobs()
    assert store.release_dead_owners() == 1  # its process is gone: no need to wait for the lease
    assert store.due_jobs() == [job.id]
    assert store.claim(job.id, f"{this_host()}:{os.getpid()}:bbbb", lease=600)


# ----------------------------------------------------------------------------------- the service
def test_a_blurred_page_is_held_replaced_alone_and_the_dossier_stored(service, data_dir, tmp_path, page_reads):
    pages = [jpeg_page(tmp_path / "1.jpg", "ALPHA"), jpeg_page(tmp_path / "2.jpg", "BRAVO", blur=4.0),
             jpeg_page(tmp_path / "3.jpg", "CHARLIE")]
    job = service.store.create(pages, case_id=DEFAULT, operator="an", kind="Đơn đề nghị")
    service.wake()
    held = wait_for("the verdicts", lambda: (j := service.store.require(job.id)).status == CHECKED and j)
    assert held.hold["code"] == "rescan" and held.hold["pages"] == [2]
    assert [p.needs_rescan for p in held.pages] == [False, True, False]
    assert "mờ" in held.pages[1].sentence_vi() and "quét lại" in held.pages[1].sentence_vi()
    for p in held.pages:
        with Image.open(service.store.path_of(job.id, p.thumbnail)) as thumb:
            assert thumb.format == "JPEG" and thumb.width <= 240
    assert not open_archive().catalog.documents_for_case(DEFAULT)  # nothing stored while held

    with service.store.upload() as up:
        up.add_path(jpeg_page(tmp_path / "2-again.jpg", "BRAVO"))
        replace_page(service.store, job.id, 2, up)
    service.wake()
    # The new page passes, and the operator still sees it before anything is stored (issue 21, item 15).
    shown = wait_for("the new verdict", lambda: (j := service.store.require(job.id)).status == CHECKED
                     and j.hold and j)
    assert shown.hold["code"] == "replaced" and shown.hold["pages"] == [2] and not shown.pages[1].needs_rescan
    assert not open_archive().catalog.documents_for_case(DEFAULT)
    service.store.confirm(job.id)
    service.wake()
    done = wait_for("the dossier stored", lambda: (j := service.store.require(job.id)).final and j)
    assert done.status == STORED, done.error
    # Only the replaced page was checked again: the other verdicts are the very same rows.
    assert [p.version for p in done.pages] == [1, 2, 1]
    assert done.pages[0].verdict == held.pages[0].verdict and done.pages[2].verdict == held.pages[2].verdict
    assert not done.pages[1].needs_rescan

    [doc] = done.documents
    assert (doc.status, doc.case_id, doc.pages, doc.pages_done) == ("stored", DEFAULT, [1, 2, 3], 3)
    [record] = open_archive().catalog.documents_for_case(DEFAULT)
    assert (record.document_id, record.page_count, record.operator) == (doc.document_id, 3, "an")
    text = pdf_text(data_dir, doc.report["stored_keys"]["searchable_pdf"])
    assert text.index("ALPHA") < text.index("BRAVO") < text.index("CHARLIE")
    # The original is the three pages as scanned (the sharp page 2), one lossless multi-page TIFF.
    with Image.open(data_dir / "objects" / doc.report["stored_keys"]["source"]) as original:
        assert original.n_frames == 3
    [run] = prefect_runs(f"job-{job.id}")
    assert run.state.is_completed()
    # Storing reused the pages the service read and checked: three pages and the replacement, each
    # read and preflighted once (issue 12: the intake flow read and checked all three again).
    assert page_reads == {"read": 4, "preflight": 4}
    assert [p["number"] for p in doc.report["pages"]] == [1, 2, 3]
    assert [bool(p["issues"]) for p in doc.report["pages"]] == [bool(p.verdict["issues"]) for p in done.pages]


def test_a_stack_split_waits_for_review_then_each_case_gets_its_pages(service, data_dir, tmp_path, page_reads):
    stack = write_stack(tmp_path / "xap.pdf", [text_page("ALPHA"), sheet(CASE), text_page("BRAVO")])
    job = service.store.create([stack], case_id=DEFAULT, operator="an", review_split=True)
    service.wake()
    held = wait_for("the split", lambda: (j := service.store.require(job.id)).status == CHECKED and j)
    assert held.hold["code"] == "review-split"
    assert [(s["case_id"], s["pages"], s["sheet_page"]) for s in held.stack["segments"]] == [
        (DEFAULT, [1], None), (CASE, [3], 2)]
    service.store.confirm(job.id)
    service.wake()
    done = wait_for("stored", lambda: (j := service.store.require(job.id)).final and j)
    assert done.status == STORED, done.error
    by_case = {d.case_id: d for d in done.documents}
    assert "ALPHA" in pdf_text(data_dir, by_case[DEFAULT].report["stored_keys"]["searchable_pdf"])
    other = pdf_text(data_dir, by_case[CASE].report["stored_keys"]["searchable_pdf"])
    assert "BRAVO" in other and "ALPHA" not in other
    # Each page of the stack was read and preflighted once, when it arrived; each dossier's pages
    # were not read again from the pieces cut for its original.
    assert page_reads == {"read": 3, "preflight": 3}
    assert [p["number"] for p in by_case[CASE].report["pages"]] == [1]


def test_prefect_not_ready_makes_a_good_scan_wait_not_fail(prefect_harness, data_dir, tmp_path, monkeypatch):
    real_start = service_module.start_prefect
    allowed = threading.Event()

    def start_prefect():
        if not allowed.is_set():
            raise RuntimeError("Server process did not start")
        real_start()

    monkeypatch.setattr(service_module, "start_prefect", start_prefect)
    monkeypatch.setattr(service_module, "retry_delay", lambda attempts: 0.5)
    svc = IntakeService(workers=1, check_workers=1, jobs=2).start()
    try:
        job = svc.store.create([jpeg_page(tmp_path / "1.jpg", "ALPHA")], case_id=DEFAULT, operator="an",
                               origin="cli", on_rescan="store")
        svc.wake()
        waiting = wait_for("waiting", lambda: (j := svc.store.require(job.id)).status == WAITING and j)
        assert waiting.error["message_vi"].startswith("Đang chờ")
        assert waiting.pages[0].status == "checked"  # the verdicts did not wait for Prefect
        allowed.set()
        done = wait_for("stored", lambda: (j := svc.store.require(job.id)).final and j)
        assert done.status == STORED, done.error
    finally:
        svc.stop()


# ----------------------------------------------------------------------------------- as processes
def _service_env(data_dir: Path) -> dict[str, str]:
    from prefect.settings import PREFECT_API_URL

    env = dict(os.environ, SOHOA_DATA_DIR=str(data_dir), PYTHONPATH=str(ROOT), PREFECT_API_URL=PREFECT_API_URL.value(),
               PREFECT_LOGGING_LEVEL="WARNING")
    env.pop("SOHOA_DATABASE_URL", None)
    return env


def _start_service(env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cli", "service", "--workers", "1", "--jobs", "1"], cwd=ROOT,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT)


def test_scan_hands_off_and_a_killed_service_finishes_the_scan_once_after_restart(prefect_harness, data_dir,
                                                                                   tmp_path):
    env = _service_env(data_dir)
    log = tmp_path / "service.log"
    proc = _start_service(env, log)
    store = open_job_store()
    try:
        wait_for("the service", lambda: store.live_services(ready_only=True), step=0.5)
        # sohoa scan hands its file to the running service (origin "cli" in the job store).
        one = jpeg_page(tmp_path / "mot.jpg", "ALPHA")
        out = subprocess.run([sys.executable, "-m", "cli", "scan", str(one), "--case", DEFAULT, "--json"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=WAIT)
        assert out.returncode == 0, out.stderr
        [cli_job] = store.list_jobs()
        assert (cli_job.origin, cli_job.status) == ("cli", STORED)
        assert cli_job.documents[0].document_id == sha256_of(one)[:20]  # the same document `scan` always made

        stack = tmp_path / "xap.tif"
        frames = [text_page(m) for m in ("BRAVO", "CHARLIE", "DELTA", "ECHO")]
        frames[0].save(stack, save_all=True, append_images=frames[1:], dpi=(DPI, DPI), compression="tiff_lzw")
        job = store.create([stack], case_id=CASE, operator="an", origin="api", on_rescan="store")
        # Killed while OCR runs inside the intake-job flow run (one page of four read).
        wait_for("OCR under way", lambda: (j := store.require(job.id)).status == PROCESSING and j.documents
                 and j.documents[0].pages_done >= 1, step=0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        assert store.require(job.id).status == PROCESSING  # the kill left it half done

        proc = _start_service(env, log)
        done = wait_for("stored after the restart", lambda: (j := store.require(job.id)).final and j, step=0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=60)
    assert done.status == STORED, (done.error, log.read_text(errors="replace")[-3000:])
    archive = open_archive()
    [record] = archive.catalog.documents_for_case(CASE)
    assert [r.document_id for r in archive.manifest_records(CASE)] == [record.document_id]
    assert record.page_count == 4 and record.source_sha256 == sha256_of(stack)
    assert "ECHO" in pdf_text(data_dir, record.keys["searchable_pdf"])
    states = sorted(r.state.type.value for r in prefect_runs(f"job-{job.id}"))
    assert states == ["COMPLETED", "CRASHED"]  # the record says what happened: one run died, one finished


def test_opening_the_catalog_again_keeps_this_process_s_sqlite_locks(data_dir):
    """Regression: open_catalog opened and closed the database file to set its mode, which drops every
    POSIX lock the process holds on it. Another process closing its connection then believed it was
    the last one and deleted the WAL under our feet: "disk I/O error", then "database disk image is
    malformed" — the web app with its intake service (the catalog opened in every task) and a
    ``sohoa token add`` beside it corrupted the shared SQLite catalog."""
    import sqlite3

    from storage.config import Settings, open_catalog

    settings = Settings.from_env()
    open_catalog(settings).close()
    db = settings.database_url[len("sqlite:///"):]
    mine = sqlite3.connect(db, isolation_level=None)
    mine.execute("CREATE TABLE IF NOT EXISTS t (x)")
    mine.execute("INSERT INTO t VALUES (1)")  # this process now uses the WAL (and holds its locks)
    open_catalog(settings).close()  # what every intake task does, in the same process
    other = subprocess.run([sys.executable, "-c", (
        "import sqlite3, sys; c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "c.execute('INSERT INTO t VALUES (2)'); c.close()"), db], capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert Path(db + "-wal").exists()  # the other process did not take itself for the last user
    mine.execute("INSERT INTO t VALUES (3)")
    assert [r[0] for r in mine.execute("SELECT x FROM t ORDER BY x")] == [1, 2, 3]
    assert mine.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    mine.close()
