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

import logging
import os
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from models import PageNeedsRescan, SohoaError, StorageUnavailable
from models.jobs import CHECKED, CHECKING, FAILED, SPOOLED, WAITING, JobPage, retry_delay
from flows.check_lane import CheckLane
from flows.holds import decide_hold
from flows.job_check import check_job, split_job
from flows.job_store import store_job
from flows.ocr_priority import lower_ocr
from flows.service_prefect import start_prefect
from storage.config import Settings, open_catalog
from storage.job_pages import settle
from storage.jobs import JobStore, job_options, this_host

log = logging.getLogger("sohoa.service")

LEASE_SECONDS = 60.0
POLL_SECONDS = 0.25


def open_job_store(config: Settings | None = None) -> JobStore:
    """The job store on the catalog database, files under ``$SOHOA_DATA_DIR/jobs``."""
    config = config or Settings.from_env()
    limit = int(os.environ.get("SOHOA_UPLOAD_LIMIT_MB") or 500) * 1024 * 1024
    return JobStore(open_catalog(config), config.data_dir / "jobs", upload_limit=limit)


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
