"""Sending the spooled scans again once the store is back (``sohoa retry``).

``drain_spool()`` sends every job of the spool (flows/spool.py) through the ``intake-request`` flow
and removes a job only once the flow reports it stored. A job is locked (flock) while it is being
sent, so a watcher and a ``sohoa retry`` running together never send it twice. It lives apart from
the spool because the intake flow itself writes to the spool: the spool sits below the intake, and
this module above it.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import StorageUnavailable
from flows.common import open_archive
from flows.intake import intake_request
from flows.spool import JOB_FILE, SPOOL_EXIT_CODE, STORED, SpoolJob, pending_jobs, spool_root
from storage.objectstore import manifest_key

log = logging.getLogger("sohoa.spool")


@dataclass
class DrainReport:
    """What one pass over the spool did: sent, still waiting (store still down), refused for good."""

    stored: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[SpoolJob] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    busy: list[SpoolJob] = field(default_factory=list)  # being sent by another process right now
    reason: str | None = None  # why the waiting jobs wait

    @property
    def exit_code(self) -> int:
        """0 when the spool is empty now; 5 when scans still wait; else the worst failure's code."""
        codes = [int(r.get("exit_code") or 1) for r in self.failed]
        if self.waiting:
            codes.append(SPOOL_EXIT_CODE)
        return max(codes) if codes else 0

    def to_json(self) -> dict[str, Any]:
        return {"stored": self.stored, "failed": self.failed,
                "waiting": [j.to_json() | {"path": str(j.path)} for j in self.waiting],
                "busy": [j.to_json() for j in self.busy], "reason": self.reason, "exit_code": self.exit_code}


@contextmanager
def _locked(job: SpoolJob) -> Iterator[bool]:
    """Hold an exclusive lock on the job while it is sent; yields False when someone else holds it."""
    try:
        fd = os.open(job.directory / JOB_FILE, os.O_RDONLY)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        # Another process may have sent and removed it between our listing and our lock.
        yield (job.directory / JOB_FILE).is_file()
    finally:
        os.close(fd)


def _store_reachable(case_id: str) -> str | None:
    """None when the store answers; else the sentence saying why not (one cheap request)."""
    try:
        open_archive().store.stat(manifest_key(case_id))
    except StorageUnavailable as exc:
        return exc.user_message()
    return None


def _move_to_failed(job: SpoolJob, result: dict[str, Any]) -> Path:
    target = job.directory.parent / "failed" / job.directory.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(target)
    os.replace(job.directory, target)
    (target / "reason.txt").write_text(
        f"{result.get('message_vi') or result.get('error')}\n{result.get('message_en') or result.get('error')}\n",
        encoding="utf-8")
    return target


def drain_spool(*, root: Path | None = None, jobs: int | None = None,
                on_job: Callable[[], None] | None = None) -> DrainReport:
    """Send every spooled scan through the intake flow; remove each job only once it is stored.

    Stops at the first job that is spooled again (the store went away again): the rest keep
    waiting. A job the intake refuses for good (unreadable file, access denied) moves to
    ``spool/failed/`` with a reason file, so nothing is ever dropped silently. ``on_job`` is
    called after each job that was looked at (the command's progress bar).
    """
    root = root or spool_root()
    report = DrainReport()
    pending = pending_jobs(root)
    if not pending:
        return report
    report.reason = _store_reachable(pending[0].case_id)
    if report.reason:
        report.waiting = pending
        return report
    for i, job in enumerate(pending):
        with _locked(job) as mine:
            if not mine:
                report.busy.append(job)
                if on_job:
                    on_job()
                continue
            # Replay exactly what was spooled: one whole file, or one dossier (pages) of a split stack.
            result = intake_request(path=str(job.path), case_id=job.case_id, kind=job.kind, operator=job.operator,
                                    pages=list(job.pages) if job.pages is not None else None,
                                    document_id=job.document_id, jobs=jobs, stack_sha256=job.stack_sha256,
                                    stack_pages=list(job.stack_pages) if job.stack_pages else None)
            status = result.get("status")
            if status in STORED:
                shutil.rmtree(job.directory)
                report.stored.append(result)
                log.info("sent spooled %s (case %s) as document %s", job.source_name, job.case_id,
                         result.get("document_id"))
            elif status == "spooled":
                report.waiting.append(SpoolJob.load(job.directory))
                report.reason = result.get("error")
            else:
                result = result | {"failed_job": str(_move_to_failed(job, result))}
                report.failed.append(result)
        if on_job:
            on_job()
        if report.reason:
            report.waiting += [j for j in pending[i + 1:]]
            break
    return report
