"""The desk's intake service: a long-lived process that checks every uploaded page at once and stores the dossier.

Prefect's start-up (the temporary local server, or the connection to ``PREFECT_API_URL``) is paid
once, when the service starts; after that each job costs one ``intake-job`` flow run. A job goes:

1. **check** (no Prefect, no OCR): every page read, preflighted and QR-read, its verdict and a
   thumbnail written to the job as soon as that page is done — the operator sees "trang 3 bị mờ"
   about a second after the upload completes. A replaced page is the only page checked again.
   The checks of all uploads share one place per core (``CheckLane``): every upload's first page
   goes before anyone's second, and the OCR in flight is lowered while pages are checked.
2. **decide**: the stack is split by its cover sheets; a desk job with a page to rescan, pages
   without a case ID or a split to review waits for the operator (``checked`` with a hold).
3. **store**: the ``intake-job`` Prefect flow (flows/intake.py) stores each document, with OCR
   progress per page written to the job.

A failure of our own (Prefect not ready, a crash, a bug) never fails a good scan: the job becomes
``waiting`` and is tried again; a store that is down makes it ``spooled`` (its files stay in the job
folder) until the store is back. Jobs, pages and leases are rows in the catalog database and the
files sit under ``$SOHOA_DATA_DIR/jobs``, so several replicas share the work and a restart loses nothing.
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import json
import logging
import os
import shutil
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from models import CaseId, PageNeedsRescan, SohoaError, StorageUnavailable
from models.jobs import (CHECKED, CHECKING, FAILED, PROCESSING, SPOOLED, STORED, WAITING, JobDocument, JobPage,
                         ScanJob, retry_delay)
from flows.holds import decide_hold
from storage.config import Settings, open_catalog
from storage.job_pages import settle, start_storing
from storage.jobs import JobStore, job_options, this_host

log = logging.getLogger("sohoa.service")

LEASE_SECONDS = 60.0
POLL_SECONDS = 0.25
# While pages are being checked, the service's OCR in flight (its Tesseract processes) is lowered to
# this niceness (SOHOA_OCR_NICE), so that the next operator's verdicts are not queued behind another
# dossier's OCR on a small machine. Otherwise OCR runs at the service's own priority: a lower one for
# good would let every other program on the machine slow the storing down.
OCR_NICENESS = 10

Gate = Callable[[int], AbstractContextManager[None]]  # check_pages' gate: a place for the k-th page


def open_job_store(config: Settings | None = None) -> JobStore:
    """The job store on the catalog database, files under ``$SOHOA_DATA_DIR/jobs``."""
    config = config or Settings.from_env()
    limit = int(os.environ.get("SOHOA_UPLOAD_LIMIT_MB") or 500) * 1024 * 1024
    return JobStore(open_catalog(config), config.data_dir / "jobs", upload_limit=limit)


def start_prefect() -> None:
    """Make Prefect ready now (start the temporary local server, or reach PREFECT_API_URL), once.

    Runs one trivial flow and an empty ``intake-job`` run, and loads the pipeline: whatever Prefect
    and the first scan need to start happens here, not while a citizen waits.
    """
    from flows.intake import intake_job

    with no_flow_heartbeats():
        ready()
        intake_job.with_options(flow_run_name="warm-up")(job_id="warm-up", requests=[])
    import pipeline.document  # noqa: F401 - OpenCV, Tesseract wrapper and pikepdf loaded once, here


def _ready_flow():  # built lazily: importing Prefect costs a second or two
    from prefect import flow

    @flow(name="intake-service-ready", log_prints=False)
    def intake_service_ready() -> bool:
        """A no-op flow run at service start: proves the Prefect API answers."""
        return True

    return intake_service_ready


_READY = None


@contextmanager
def no_flow_heartbeats() -> Iterator[None]:
    """Run flows here without Prefect's per-run heartbeat thread.

    Prefect joins that thread at the end of every flow run and it sleeps in whole seconds, which
    adds ~1 s to each scan. The service has its own crash detection (job leases), and a run that a
    crash left "Running" is marked Crashed when its job is taken up again (``crash_stale_runs``).
    """
    from prefect.context import SettingsContext
    from prefect.settings import get_current_settings

    current = get_current_settings()
    settings = current.model_copy(update={"flows": current.flows.model_copy(update={"heartbeat_frequency": None})})
    with SettingsContext(profile=SettingsContext.get().profile, settings=settings):
        yield


def crash_stale_runs(job_id: str) -> int:
    """Mark the job's earlier ``intake-job`` runs that never finished (the service died) as Crashed."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName, FlowRunFilterState, \
        FlowRunFilterStateType
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    marked = 0
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=FlowRunFilter(
            name=FlowRunFilterName(like_=f"job-{job_id}"),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))))
        for run in runs:
            client.set_flow_run_state(run.id, Crashed(message="the intake service stopped during this run; "
                                                             "the job was taken up again"), force=True)
            marked += 1
    return marked


def ready() -> bool:
    global _READY
    if _READY is None:
        _READY = _ready_flow()
    return bool(_READY())


class CheckLane:
    """The page checks of all jobs in this process share ``slots`` places (one per core), first pages first.

    Each job's check asks for a place per page (``job()`` gives it its ``gate`` for ``check_pages``):
    the waiting page with the lowest position in its own upload goes next, ties in order of arrival.
    Four operators uploading at once all get their first page's verdict before anyone's second page
    is read; the pages wait here, not on the cores, so they do not slow the ones being checked.
    """

    def __init__(self, slots: int, *, on_place: Callable[[], object] | None = None) -> None:
        self.slots = max(1, slots)
        self.on_place = on_place  # called as each page gets its place (the service lowers the OCR in flight)
        self._busy = 0
        self._waiting: list[tuple[int, int, int]] = []  # (position in its upload, arrival of the upload, ticket)
        self._cond = threading.Condition()
        self._arrivals = itertools.count()
        self._tickets = itertools.count()

    def job(self) -> Gate:
        """The gate of one check call: ``gate(k)`` holds a place for the k-th page it reads or checks."""
        arrival = next(self._arrivals)
        return lambda k: self._place(k, arrival)

    @contextmanager
    def _place(self, position: int, arrival: int) -> Iterator[None]:
        entry = (position, arrival, next(self._tickets))
        with self._cond:
            heapq.heappush(self._waiting, entry)
            while self._busy >= self.slots or self._waiting[0] != entry:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self._busy += 1
            self._cond.notify_all()  # the next in line may take another free place
        try:
            if self.on_place is not None:
                self.on_place()
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Pages being checked or waiting for a place."""
        with self._cond:
            return self._busy + len(self._waiting)


class IntakeService:
    """Runs desk scan jobs: page checks at once (``check_workers`` at a time), storing (``workers`` at a time)."""

    def __init__(self, *, config: Settings | None = None, workers: int = 2, check_workers: int = 4,
                 jobs: int | None = None, poll: float = POLL_SECONDS, lease: float = LEASE_SECONDS,
                 warm_prefect: bool = True) -> None:
        self.config = config or Settings.from_env()
        self.store = open_job_store(self.config)
        self.instance = f"{this_host()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.workers = workers
        self.check_workers = check_workers
        self.jobs = jobs
        self.poll = poll
        self.lease = lease
        self.warm_prefect = warm_prefect
        self.prefect_ready = threading.Event()
        self.started_at = time.time()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._active: set[str] = set()  # jobs this instance holds (checking or storing)
        self._checking: set[str] = set()  # of which being checked: page checks never wait behind OCR
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._check_pool = ThreadPoolExecutor(max_workers=check_workers, thread_name_prefix="sohoa-check")
        from pipeline.document import default_jobs

        self.check_lane = CheckLane(default_jobs(), on_place=lower_ocr)
        self._store_pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sohoa-store")
        self.prefect_error: str | None = None

    # ------------------------------------------------------------------------- life cycle
    def start(self) -> IntakeService:
        """Recover what a previous run left, warm Prefect in the background, start taking jobs."""
        freed = self.store.release_dead_owners()
        if freed:
            log.warning("took back %d job(s) from a service that stopped on this host", freed)
        self.store.discard_stale_uploads()
        self.store.heartbeat(self.instance, ready=False, started_at=self.started_at)
        for target, name in ((self._warm, "sohoa-prefect"), (self._dispatch, "sohoa-dispatch"),
                             (self._beat, "sohoa-heartbeat")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, *, wait: bool = True) -> None:
        """Stop taking jobs; jobs in progress finish (``wait``) or are taken up again after a restart."""
        self._stop.set()
        self._wake.set()
        self._check_pool.shutdown(wait=wait, cancel_futures=True)
        self._store_pool.shutdown(wait=wait, cancel_futures=True)
        for t in self._threads:
            t.join(timeout=5)
        try:
            self.store.stop_service(self.instance)
        except SohoaError:
            pass

    def wake(self) -> None:
        """A job was just committed in this process: look for it now rather than at the next poll."""
        self._wake.set()

    def wait_ready(self, timeout: float) -> bool:
        return self.prefect_ready.wait(timeout)

    def _warm(self) -> None:
        if not self.warm_prefect:
            self.prefect_ready.set()
            return
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            try:
                started = time.perf_counter()
                start_prefect()
                log.info("Prefect ready in %.1f s", time.perf_counter() - started)
                self.prefect_error = None
                self.prefect_ready.set()
                self._wake.set()
                return
            except Exception as exc:  # noqa: BLE001 - Prefect not ready is a wait, never a failed scan
                self.prefect_error = f"{type(exc).__name__}: {exc}"
                log.warning("Prefect is not ready (%s); trying again", self.prefect_error)
                self._stop.wait(retry_delay(attempt))

    def _beat(self) -> None:
        last_sweep = time.monotonic()
        while not self._stop.is_set():
            try:
                self.store.renew(self.instance, lease=self.lease)
                self.store.heartbeat(self.instance, ready=self.prefect_ready.is_set(), started_at=self.started_at)
                if time.monotonic() - last_sweep > 60:
                    self.store.discard_stale_uploads()
                    last_sweep = time.monotonic()
            except Exception:  # noqa: BLE001 - a database hiccup: the next beat tries again
                log.exception("heartbeat failed")
            self._stop.wait(min(5.0, self.lease / 4))

    def _dispatch(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                with self._lock:
                    room = self.check_workers - len(self._checking)
                if room > 0:
                    for job_id in self.store.due_jobs(limit=room + len(self._active)):
                        with self._lock:
                            if job_id in self._active or len(self._checking) >= self.check_workers:
                                continue
                        if self.store.claim(job_id, self.instance, lease=self.lease):
                            with self._lock:
                                self._active.add(job_id)
                                self._checking.add(job_id)
                            self._check_pool.submit(self._run, job_id)
            except Exception:  # noqa: BLE001 - the database is away: poll again
                log.exception("could not look for jobs")
            self._wake.wait(self.poll)

    # ------------------------------------------------------------------------- one job
    def _run(self, job_id: str) -> None:
        handed_on = False
        try:
            handed_on = self._check_stage(job_id)
        except SohoaError as exc:
            if exc.retryable:  # the catalog or store is away: the scan is safe, try again later
                self._our_failure(job_id, exc)
            else:  # the scan itself cannot be used (unreadable, truncated…): say why, keep the files
                log.warning("job %s failed: %s", job_id, exc.message_en)
                self.store.update(job_id, status=FAILED, error=_error(exc), next_attempt_at=None)
        except Exception as exc:  # noqa: BLE001 - our own failure: the job waits and is tried again
            self._our_failure(job_id, exc)
        finally:
            with self._lock:
                self._checking.discard(job_id)
            if not handed_on:
                self._finish(job_id)
            else:
                self._wake.set()  # a check slot is free again

    def _finish(self, job_id: str) -> None:
        try:
            self.store.release(job_id, self.instance)
        except Exception:  # noqa: BLE001 - the lease runs out by itself
            log.exception("could not release job %s", job_id)
        with self._lock:
            self._active.discard(job_id)
        self._wake.set()

    def _our_failure(self, job_id: str, exc: BaseException) -> None:
        log.error("job %s waits after a failure of ours: %s\n%s", job_id, exc, traceback.format_exc())
        job = self.store.get(job_id)
        attempts = (job.attempts if job else 0) + 1
        self.store.update(job_id, status=WAITING, attempts=attempts, next_attempt_at=time.time() + retry_delay(attempts),
                          error={"code": "internal", "detail": f"{type(exc).__name__}: {exc}"[:500],
                                 "message_vi": "Đang chờ: hệ thống gặp sự cố tạm thời, sẽ tự xử lý lại bản quét.",
                                 "message_en": "Waiting: a temporary problem on our side; the scan will be "
                                               "processed again by itself."})

    def _check_stage(self, job_id: str) -> bool:
        """Check pending pages, split, decide; True when the job was handed to the storing pool."""
        job = self.store.require(job_id)
        if job.final:
            return False
        options = job_options(self.store, job_id)
        if not job.pages or any(p.status != "checked" for p in job.pages) or job.stack is None:
            self.store.update(job_id, status=CHECKING)
            check_job(self.store, job, gate=self.check_lane.job())
            job = self.store.require(job_id)
            job.stack, job.documents = split_job(job, units=options.get("units"))
            job.hold = decide_hold(job, options)
            rescan = [p for p in job.pages if p.needs_rescan]
            if job.on_rescan == "refuse" and rescan:
                exc = _rescan_error(rescan)
                self.store.update(job_id, status=FAILED, stack=job.stack, documents=job.documents, hold=None,
                                  error=_error(exc))
                return False
            if not settle(self.store, job_id, status=CHECKED, stack=job.stack, documents=job.documents,
                          hold=job.hold, error=None):
                return False  # a page was replaced during the check: the next round checks it first
        if job.hold:
            return False
        if not self.prefect_ready.is_set():
            attempts = job.attempts + 1
            self.store.update(job_id, status=WAITING, attempts=attempts, next_attempt_at=time.time() + 1.0,
                              error={"code": "prefect-not-ready", "detail": self.prefect_error,
                                     "message_vi": "Đang chờ: hệ thống xử lý đang khởi động.",
                                     "message_en": "Waiting: the processing system is starting."})
            return False
        self._store_pool.submit(self._store_stage, job_id)
        return True

    def _store_stage(self, job_id: str) -> None:
        try:
            self.store.renew(self.instance, lease=self.lease)
            store_job(self.store, self.store.require(job_id), jobs=self.jobs)
        except StorageUnavailable as exc:
            job = self.store.get(job_id)
            attempts = (job.attempts if job else 0) + 1
            log.warning("job %s waits for the store: %s", job_id, exc.message_en)
            self.store.update(job_id, status=SPOOLED, attempts=attempts,
                              next_attempt_at=time.time() + retry_delay(attempts), error=_error(exc))
        except SohoaError as exc:
            if exc.retryable:
                self._our_failure(job_id, exc)
            else:
                log.warning("job %s failed: %s", job_id, exc.message_en)
                self.store.update(job_id, status=FAILED, error=_error(exc), next_attempt_at=None)
        except Exception as exc:  # noqa: BLE001 - our own failure (Prefect down, a bug): wait, retry
            self._our_failure(job_id, exc)
        finally:
            self._finish(job_id)


# ----------------------------------------------------------------------------- stages (plain functions)
def check_job(store: JobStore, job: ScanJob, *, gate: Gate | None = None) -> None:
    """Preflight and QR-read the job's unchecked pages, writing each page's verdict as soon as it is ready.

    ``gate``: the service's check lane (``CheckLane.job()``), shared by all jobs being checked.
    """
    from pipeline.document import check_pages

    base = store.job_dir(job.id)
    work = base / "work"
    if not job.pages:
        offset = 0
        for index, f in enumerate(job.files):
            if not f.path.startswith("files/"):
                continue
            thumbs = Path("thumbs") / f"f{index + 1:02d}"
            first = offset

            def save(outcome, f=f, first=first, thumbs=thumbs) -> None:
                _save_page(store, job.id, outcome, number=first + outcome.raw.number, file=f.path,
                           file_page=outcome.raw.number, version=1,
                           thumbnail=str(thumbs / outcome.thumbnail.name) if outcome.thumbnail else None)

            try:
                outcomes = check_pages([base / f.path], workdir=work / f"check-{index + 1:02d}", jobs=None,
                                       detect_qr=True, thumbnails=base / thumbs, on_outcome=save,
                                       gate=shifted(gate, offset))
            finally:
                shutil.rmtree(work / f"check-{index + 1:02d}", ignore_errors=True)
            offset += len(outcomes)
        return
    checked = 0
    for page in job.pages:
        if page.status == "checked":
            continue
        thumbs = Path("thumbs") / f"p{page.number:04d}-v{page.version}"

        def save(outcome, page=page, thumbs=thumbs) -> None:
            _save_page(store, job.id, outcome, number=page.number, file=page.file, file_page=page.file_page,
                       version=page.version,
                       thumbnail=str(thumbs / outcome.thumbnail.name) if outcome.thumbnail else None)

        workdir = work / f"check-p{page.number:04d}"
        try:
            check_pages([base / page.file], workdir=workdir, pages={page.file_page}, detect_qr=True,
                        thumbnails=base / thumbs, on_outcome=save, gate=shifted(gate, checked))
            checked += 1
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def shifted(gate: Gate | None, offset: int) -> Gate | None:
    """The gate of a job's check for a part of it: its k-th page is the job's (offset + k)-th."""
    return None if gate is None else (lambda k: gate(offset + k))


def _kept_page(base: Path, number: int, version: int) -> tuple[Path, Path]:
    """Where the service keeps a checked page's image (as read) and its reading, for storing it later."""
    stem = base / "work" / "pages" / f"p{number:04d}-v{version}"
    return stem.with_suffix(".img"), stem.with_suffix(".json")


def _keep_page(base: Path, outcome, *, number: int, version: int) -> None:
    """Keep the page image check_pages read, so storing the job does not read and check it again."""
    raw = outcome.raw
    if raw.path is None or not raw.path.is_file():
        return  # a PDF page with its own text: the intake flow reads it (cheaply) again
    image, meta = _kept_page(base, number, version)
    image.parent.mkdir(parents=True, exist_ok=True)
    suffix = raw.path.suffix  # OpenCV needs the image's own extension to read it back
    os.replace(raw.path, image.with_suffix(suffix))
    meta.write_text(json.dumps({"path": str(image.with_suffix(suffix)), "dpi": raw.dpi,
                                "dpi_estimated": raw.dpi_estimated, "width": raw.width, "height": raw.height}),
                    encoding="utf-8")


def _checked_pages(base: Path, pages: list[JobPage]) -> list[dict[str, Any]] | None:
    """The kept readings of these pages with the verdicts the operator saw; None unless every page has one."""
    out = []
    for p in pages:
        _, meta = _kept_page(base, p.number, p.version)
        try:
            reading = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if p.verdict is None or not Path(reading["path"]).is_file():
            return None
        out.append(reading | {"verdict": p.verdict})
    return out


def _save_page(store: JobStore, job_id: str, outcome, *, number: int, file: str, file_page: int, version: int,
               thumbnail: str | None) -> None:
    _keep_page(store.job_dir(job_id), outcome, number=number, version=version)
    verdict = outcome.report.to_dict() | {"number": number}
    page = JobPage(number=number, file=file, file_page=file_page, version=version, status="checked",
                   verdict=verdict, qr=outcome.qr.text if outcome.qr else None, thumbnail=thumbnail)
    store.set_page(job_id, page, expect_version=version)


def split_job(job: ScanJob, *, units: list[str] | None = None) -> tuple[dict[str, Any], list[JobDocument]]:
    """Cut the job's pages at its cover sheets: the stack summary and one planned document per case.

    With ``units`` (the uploader's), a cover sheet of a case of another unit is refused: its pages
    are not stored, and the operator is told (an operator receives scans for their own units only).
    """
    from pipeline.qr import QrFinding, split_stack

    findings = [None if p.qr is None else QrFinding.from_text(p.qr) for p in job.pages]
    default = CaseId.parse(job.case_id) if job.case_id else None
    split = split_stack(findings, default_case=default)
    number = [p.number for p in job.pages]
    segments = [{"case_id": str(s.case_id) if s.case_id else None, "pages": [number[i] for i in s.pages],
                 "sheet_page": None if s.sheet_page is None else number[s.sheet_page]} for s in split.segments]
    stack = {"page_count": len(job.pages), "segments": segments,
             "issues": [{"page": number[i.page], "kind": i.kind, "text": i.text, "message_vi": i.message_vi,
                         "message_en": i.message_en} for i in split.issues]}
    documents = [JobDocument(case_id=s["case_id"], pages=s["pages"],
                             status="planned" if s["case_id"] else "needs-case-id")
                 for s in segments if s["pages"]]
    if units is not None:
        for doc in documents:
            if doc.case_id and CaseId.parse(doc.case_id).agency not in units:
                doc.status = "refused"
                vi = (f"Hồ sơ {doc.case_id} không thuộc đơn vị của bạn; các trang {doc.pages[0]}–{doc.pages[-1]} "
                      "không được lưu. Kiểm tra tờ bìa.")
                en = (f"Case {doc.case_id} is not of your units; pages {doc.pages[0]}–{doc.pages[-1]} are not "
                      "stored. Check the cover sheet.")
                doc.report = {"status": "failed", "case_id": doc.case_id, "message_vi": vi, "message_en": en,
                              "error_type": "ForeignCase", "exit_code": 2}
                stack["issues"].append({"page": doc.pages[0], "kind": "foreign_case", "text": doc.case_id,
                                        "message_vi": vi, "message_en": en})
    return stack, documents


def plan_requests(store: JobStore, job: ScanJob) -> list[tuple[int, dict[str, Any]]]:
    """(document index, intake request) for every document still to store.

    One whole uploaded file (or its pages of a stack) is stored as it is, so its document ID is the
    one ``sohoa scan`` would give it; pages from several files, or with a replaced page, are first
    assembled into one lossless TIFF in the job folder (made once, then reused on every retry).
    """
    from pipeline.reader import assemble_pages, sniff_format

    base = store.job_dir(job.id)
    by_number = {p.number: p for p in job.pages}
    uploads = [f for f in job.files if f.path.startswith("files/")]
    out: list[tuple[int, dict[str, Any]]] = []
    for index, doc in enumerate(job.documents):
        if doc.case_id is None or doc.status not in ("planned", "processing", "failed", "spooled"):
            continue
        pages = [by_number[n] for n in doc.pages]
        files = {p.file for p in pages}
        request: dict[str, Any] = {"case_id": doc.case_id, "kind": job.kind, "operator": job.operator,
                                   "progress": f"{job.id}:{index}"}
        if len(files) == 1 and pages[0].file.startswith("files/") and all(p.version == 1 for p in pages):
            f = next(f for f in uploads if f.path == pages[0].file)
            sniff_format(base / f.path)
            total = sum(1 for p in job.pages if p.file == f.path)
            if len(pages) == total and [p.file_page for p in pages] == list(range(1, total + 1)):
                request |= {"path": str(base / f.path), "source_sha256": f.sha256}
            else:  # one dossier of a stack: it gets its own pages only (flows/intake.py intake_job)
                request |= {"stack": {"path": str(base / f.path), "sha256": f.sha256, "page_count": total,
                                      "pages": [p.file_page for p in pages]}}
        else:
            parts = [(base / p.file, p.file_page) for p in pages]
            tag = hashlib.sha256(repr([(p.file, p.file_page) for p in pages]).encode()).hexdigest()[:12]
            # Named after the operator's first file, so the record still says where the pages came from.
            first = next((f.name for f in job.files if f.path == pages[0].file), "scan")
            target = base / "assembled" / tag / f"{Path(first).stem}-{len(pages)}-trang.tif"
            if not target.is_file():
                workdir = base / "work" / f"assemble-{tag}"
                try:
                    assemble_pages(parts, target, workdir)
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
            request |= {"path": str(target)}
        checked = _checked_pages(base, pages)
        if checked:
            request["checked"] = checked
        out.append((index, request))
    return out


def store_job(store: JobStore, job: ScanJob, *, jobs: int | None = None) -> ScanJob:
    """Run the ``intake-job`` flow for the job's documents and record the outcome on the job."""
    from flows.intake import intake_job, listen_progress, stop_listening

    if job.status in (PROCESSING, WAITING, SPOOLED):  # an earlier attempt may have left its run "Running"
        try:
            crash_stale_runs(job.id)
        except Exception:  # noqa: BLE001 - only the record's tidiness is at stake
            log.warning("could not mark the earlier runs of job %s as crashed", job.id, exc_info=True)
    if not start_storing(store, job.id):  # a page was replaced meanwhile: it is checked (and shown) first
        return store.require(job.id)
    documents = job.documents
    lock = threading.Lock()
    planned = plan_requests(store, job)
    for index, _ in planned:
        documents[index].status = "processing"
        documents[index].pages_done = 0

        def progress(_page: int, index: int = index) -> None:
            with lock:
                documents[index].pages_done += 1
                store.update(job.id, documents=documents)

        listen_progress(f"{job.id}:{index}", progress)
    store.update(job.id, documents=documents)
    try:
        reports = []
        if planned:
            with no_flow_heartbeats():
                reports = intake_job.with_options(flow_run_name=f"job-{job.id}")(
                    job_id=job.id, requests=[r for _, r in planned], jobs=jobs)
    finally:
        for index, _ in planned:
            stop_listening(f"{job.id}:{index}")
    for (index, _), report in zip(planned, reports, strict=True):
        doc = documents[index]
        doc.status = report.get("status", "failed")
        doc.document_id = report.get("document_id")
        doc.report = report
        if doc.status in ("stored", "already-stored"):
            doc.pages_done = len(doc.pages)
    failed = [d for d in documents if d.status in ("failed", "refused")]
    error = None
    if failed:
        r = failed[0].report or {}
        error = {"code": r.get("error_type", "failed"), "message_vi": r.get("message_vi"),
                 "message_en": r.get("message_en"), "exit_code": r.get("exit_code", 1)}
    status = FAILED if failed else STORED
    store.update(job.id, status=status, documents=documents, error=error, next_attempt_at=None)
    if status == STORED:
        shutil.rmtree(store.job_dir(job.id) / "work", ignore_errors=True)
    log.info("job %s %s: %s", job.id, status, ", ".join(f"{d.case_id}/{d.document_id} {d.status}" for d in documents))
    return store.require(job.id)


def _rescan_error(pages: list[JobPage]) -> PageNeedsRescan:
    en, vi = [], []
    for p in pages:
        for i in (p.verdict or {}).get("issues", []):
            if i.get("severity") == "rescan":
                en.append(f"page {p.number}: {i['message_en']}")
                vi.append(f"trang {p.number}: {i['message_vi']}")
    return PageNeedsRescan([p.number for p in pages], en, vi)


def _error(exc: SohoaError) -> dict[str, Any]:
    return {"code": type(exc).__name__, "message_vi": exc.message_vi, "message_en": exc.message_en,
            "exit_code": exc.exit_code}


def lower_ocr(niceness: int | None = None) -> int:
    """Lower this process's Tesseract processes and in-process reading threads (the OCR in flight) to
    ``niceness``; how many were lowered.

    Raising a niceness needs no privilege (lowering it back would), so a page's OCR stays lowered
    until that page is read; the next page's Tesseract starts at the service's own priority again.
    Linux only (``/proc``); elsewhere nothing is lowered.
    """
    if niceness is None:
        niceness = int(os.environ.get("SOHOA_OCR_NICE") or OCR_NICENESS)
    from pipeline.ocr import reading_threads

    lowered = 0
    inside = reading_threads()  # the in-process engine reads in this process's worker threads
    for pid in _children() | inside:
        try:
            if pid not in inside:
                with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                    if f.read().strip() != "tesseract":
                        continue
            if os.getpriority(os.PRIO_PROCESS, pid) < niceness:
                os.setpriority(os.PRIO_PROCESS, pid, niceness)
                lowered += 1
        except OSError:  # it has just ended
            continue
    return lowered


def _children() -> set[int]:
    """This process's child processes (started by any of its threads)."""
    pids: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as f:
                pids.update(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return pids
