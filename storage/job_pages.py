"""Replacing a page of a scan job and the job's moves that must not race a replacement.

A page replaced while the service checks or stores the job must be checked (and, on a held job,
shown to the operator) before anything is stored. So a replacement, the service's decision after
a check, and the start of storing are each one conditional update: a replacement applies only to
the page version it read and to a job not yet being stored; the decision applies only while the job
is still the one being checked with every page checked; storing starts only on a job whose every
page is checked and nothing waits for the operator. In one process, replacements of one job also
wait for each other, so two quick replacements both apply, in order.
"""
from __future__ import annotations

import os
import shutil
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from models import JobConflict, NotFound
from models.jobs import CHECKED, CHECKING, FINAL, PROCESSING, RECEIVED, SPOOLED, WAITING

if TYPE_CHECKING:
    from storage.jobs import JobStore
    from storage.uploads import Upload

_LOCKS: weakref.WeakValueDictionary[str, threading.Lock] = weakref.WeakValueDictionary()
_LOCKS_GUARD = threading.Lock()
STORABLE = (CHECKED, WAITING, SPOOLED, PROCESSING)  # PROCESSING/WAITING/SPOOLED: a retry of storing
ATTEMPTS = 5


def _job_lock(job_id: str) -> threading.Lock:
    with _LOCKS_GUARD:
        lock = _LOCKS.get(job_id)
        if lock is None:
            lock = threading.Lock()
            _LOCKS[job_id] = lock
        return lock


def _unchecked(job_id: str) -> Any:
    from storage.jobs import scan_job_pages

    return sa.exists().where(scan_job_pages.c.job_id == job_id, scan_job_pages.c.status != "checked")


def replace_page(store: JobStore, job_id: str, number: int, up: Upload) -> Any:
    """Page ``number`` becomes the (one-page) file of ``up``; only that page is checked again.

    On a job that was waiting for the operator, the job waits again once the new page is checked
    (the operator sees the new page's verdict and presses "Lưu").
    """
    if len(up.files) != 1:
        raise JobConflict("Send exactly one file to replace a page.", "Hãy gửi đúng một tệp để thay trang.")
    with _job_lock(job_id):
        for _ in range(ATTEMPTS):
            if _try_replace(store, job_id, number, up):
                up.discard()
                return store.require(job_id)
        raise JobConflict(f"Page {number} of job {job_id} is being replaced by someone else; try again.",
                          f"Trang {number} đang được thay từ nơi khác; hãy thử lại.")


def _try_replace(store: JobStore, job_id: str, number: int, up: Upload) -> bool:
    from storage.jobs import _options, scan_job_pages, scan_jobs

    job = store.require(job_id)
    if job.status in FINAL or job.status == PROCESSING:
        raise JobConflict(
            f"Job {job_id} is {job.status}; a page can only be replaced before the dossier is stored.",
            f"Lượt quét đã ở trạng thái '{job.status_vi}'; chỉ thay được trang trước khi lưu hồ sơ.")
    page = next((p for p in job.pages if p.number == number), None)
    if page is None:
        raise NotFound(f"Job {job_id} has no page {number}.", f"Lượt quét không có trang {number}.")
    [new] = up.files
    version = page.version + 1
    # The upload's own folder name: two replicas computing the same version never write one path.
    rel = f"replacements/p{number:04d}-v{version}-{up.id[:8]}/{new.name}"
    target = store.job_dir(job_id) / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(up.dir / new.path, target)
    options = _options(store, job_id) | {"confirmed": False}  # a changed page is checked and shown again
    if job.status == CHECKED and job.hold:
        options["replaced"] = sorted({*options.get("replaced", []), number})
    files = [vars(f) for f in job.files] + [{"name": new.name, "path": rel, "sha256": new.sha256, "size": new.size}]
    try:
        with store._tx() as conn:  # noqa: SLF001 - one transaction for the job row and its page
            # The job row first: a decision or the start of storing racing this waits for it, then sees it.
            if not conn.execute(scan_jobs.update().where(
                    scan_jobs.c.id == job_id, scan_jobs.c.status.not_in([*FINAL, PROCESSING]),
            ).values(status=RECEIVED, hold=None, updated_at=time.time(), next_attempt_at=None, options=options,
                     files=files)).rowcount:
                raise _Lost
            if not conn.execute(scan_job_pages.update().where(
                    scan_job_pages.c.job_id == job_id, scan_job_pages.c.number == number,
                    scan_job_pages.c.version == page.version,
            ).values(file=rel, file_page=1, version=version, status="pending", verdict=None, qr=None,
                     thumbnail=None)).rowcount:
                raise _Lost
    except _Lost:  # the job started storing, or another replica replaced the page first: read again
        os.replace(target, up.dir / new.path)
        shutil.rmtree(target.parent, ignore_errors=True)
        return False
    return True


class _Lost(Exception):
    """The row changed between reading and writing it (rolls the transaction back)."""


def settle(store: JobStore, job_id: str, **values: Any) -> bool:
    """Record the decision after a check, unless a page was replaced meanwhile (then it is checked first)."""
    from storage.jobs import scan_jobs

    if "documents" in values:
        values["documents"] = [d if isinstance(d, dict) else vars(d) for d in values["documents"]]
    with store._tx() as conn:  # noqa: SLF001
        return conn.execute(scan_jobs.update().where(
            scan_jobs.c.id == job_id, scan_jobs.c.status == CHECKING, ~_unchecked(job_id),
        ).values(**values, updated_at=time.time())).rowcount == 1


def start_storing(store: JobStore, job_id: str) -> bool:
    """The job becomes ``processing`` only if every page is checked and nothing waits for the operator."""
    from storage.jobs import scan_jobs

    with store._tx() as conn:  # noqa: SLF001
        return conn.execute(scan_jobs.update().where(
            scan_jobs.c.id == job_id, scan_jobs.c.status.in_(STORABLE), scan_jobs.c.hold.is_(None),
            ~_unchecked(job_id),
        ).values(status=PROCESSING, error=None, updated_at=time.time())).rowcount == 1
