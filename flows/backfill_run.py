"""Backfilling files in this process: one file as a retried Prefect task, many through a bounded window."""
from __future__ import annotations

import concurrent.futures as cf
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from prefect import task

from models import SohoaError, StorageUnavailable
from models.errors import InputFileError
from flows.backfill_source import Item, case_from_first_page
from flows.common import open_archive, settings

FILE_RETRIES = 2
FILE_RETRY_DELAYS = [5, 30]
# Ctrl-C: files under way get this long to finish, then whatever is left is reported as interrupted.
STOP_GRACE_SECONDS = 1.5
# Set (by the command's Ctrl-C handler) to stop a running backfill: no new file starts, the report is
# made exact (see run_items) and FINISHED is set with the summary as soon as the report is final.
STOP = threading.Event()


def worker_name() -> str:
    """Who ran a file: the ``sohoa worker`` name when set, else host:pid."""
    return os.environ.get("SOHOA_WORKER_NAME") or f"{socket.gethostname()}:{os.getpid()}"


def _retry_if_retryable(task, task_run, state) -> bool:
    """Retry a file only when a retry can fix it (store unreachable), never a corrupt scan."""
    try:
        state.result()
    except SohoaError as exc:
        return exc.retryable
    except (ConnectionError, TimeoutError):
        return True
    except Exception:  # noqa: BLE001 - unknown errors: fail and report rather than hammer
        return False
    return False


@task(name="backfill-file", retries=FILE_RETRIES, retry_delay_seconds=FILE_RETRY_DELAYS,
      retry_condition_fn=_retry_if_retryable)
def backfill_file(path: str, case_id: str | None, kind: str | None = None, case_from_qr: bool = False,
                  jobs: int | None = 1) -> dict[str, Any]:
    """Ingest one source file through the intake API; returns its report row."""
    from flows.intake import IntakeRequest, ingest_one

    started = time.perf_counter()
    work_root = settings().data_dir / "work"
    row = {"path": path, "case_id": case_id or "", "document_id": "", "pages": "", "status": "",
           "reason": "", "worker": worker_name()}
    if case_from_qr:
        case_id, reason = case_from_first_page(Path(path), work_root)
        if case_id is None:
            return row | {"status": "no-case-id", "reason": reason,
                          "seconds": f"{time.perf_counter() - started:.2f}"}
        row["case_id"] = case_id
    if not Path(path).is_file():
        raise InputFileError(f"{path} no longer exists.", f"Không còn tệp {path}.")
    # No spool here: the source tree is still there, so a store outage makes the file fail with a
    # retryable error (retried, then reported) instead of copying thousands of files to local disk.
    report = ingest_one(IntakeRequest(path=path, case_id=case_id, kind=kind, operator="backfill"),
                        work_root=work_root, jobs=jobs, spool=False)
    if report.get("status") not in ("stored", "already-stored"):
        raise SohoaError(f"intake ended with status {report.get('status')!r}: {report.get('error')}",
                         f"tiếp nhận kết thúc với trạng thái {report.get('status')!r}: {report.get('error')}")
    status = "stored" if report.get("status") == "stored" else "skipped"
    return row | {"document_id": report.get("document_id", ""), "pages": report.get("page_count", ""),
                  "status": status,
                  "reason": "" if status == "stored" else "đã lưu trước đó (already stored, same SHA-256)",
                  "seconds": f"{time.perf_counter() - started:.2f}"}


def failed_row(item: Item, exc: BaseException, seconds: float) -> dict[str, Any]:
    """The report row of a file that failed for good, with its reason in both languages."""
    reason = exc.user_message() if isinstance(exc, SohoaError) else f"{type(exc).__name__}: {exc}"
    return {"path": item.path, "case_id": item.case_id or "", "document_id": "", "pages": "",
            "status": "failed", "reason": reason, "seconds": f"{seconds:.2f}", "worker": worker_name()}


def interrupted_row(item: Item, seconds: float) -> dict[str, Any]:
    """The report row of a file that was under way when the run was stopped, and is not stored."""
    return {"path": item.path, "case_id": item.case_id or "", "document_id": "", "pages": "",
            "status": "interrupted", "seconds": f"{seconds:.2f}", "worker": worker_name(),
            "reason": "dừng giữa chừng, chưa lưu; chạy lại lệnh để hoàn tất (stopped before it was stored; run the "
                      "same command again to finish it)"}


def _settle_after_stop(item: Item, row: dict[str, Any] | None, seconds: float) -> dict[str, Any]:
    """The true row of a file once no document can be recorded any more: stored, skipped or interrupted."""
    from flows.intake_gate import GATE
    from pipeline.reader import sha256_of

    if row is not None and row.get("status") in ("stored", "skipped", "no-case-id"):
        return row
    entry = GATE.recorded.get(item.path)
    if entry is not None:
        return {"path": item.path, "case_id": entry["case_id"], "document_id": entry["document_id"],
                "pages": entry["page_count"], "status": "stored", "reason": "", "seconds": f"{seconds:.2f}",
                "worker": worker_name()}
    if item.case_id:
        try:
            rec = open_archive().is_stored(item.case_id, sha256_of(Path(item.path)))
        except (SohoaError, OSError):
            rec = None
        if rec is not None:
            return {"path": item.path, "case_id": item.case_id, "document_id": rec.document_id,
                    "pages": rec.page_count, "status": "skipped", "seconds": f"{seconds:.2f}",
                    "worker": worker_name(), "reason": "đã lưu trước đó (already stored, same SHA-256)"}
    # Not stored: a failure seen after Ctrl-C may be the Ctrl-C itself (it also stops the OCR
    # programs), so the file is reported as interrupted and the next run takes it again.
    return interrupted_row(item, seconds)


def no_case_row(item: Item) -> dict[str, Any]:
    """The report row of a file that is not ingested because it has no usable case ID."""
    return {"path": item.path, "case_id": "", "document_id": "", "pages": "",
            "status": "refused" if item.refused else "no-case-id",
            "reason": item.reason, "seconds": "0.00", "worker": ""}


def open_archive_once(attempts: int = 3) -> None:
    """Open (and migrate) the archive once before files run in parallel: concurrent first migrations race."""
    for attempt in range(attempts):
        try:
            open_archive()
            return
        except StorageUnavailable:
            if attempt == attempts - 1:
                raise
            time.sleep(1 + attempt)


def run_items(items: Iterable[Item], *, concurrency: int, on_row: Callable[[dict[str, Any]], None],
              jobs: int | None = 1, stop_after: int | None = None, lookahead: int | None = None) -> int:
    """Ingest items inside the current flow, ``concurrency`` at a time, never two files of one case at once.

    Items without a case ID are reported at once. At most ``concurrency`` files run and at most
    ``lookahead`` more wait, so memory stays flat. Returns the number of files handed to ingestion.
    """
    concurrency = max(1, concurrency)
    open_archive_once()
    lookahead = lookahead or 4 * concurrency
    inflight: dict[cf.Future, tuple[Item, Any, float]] = {}
    busy: set[str] = set()
    pending: deque[Item] = deque()
    source = iter(items)
    exhausted = False
    submitted = 0

    def collect(block: bool) -> None:
        if not inflight:
            return
        # Wake up now and then even while files run, so a Ctrl-C (STOP) is seen at once.
        done, _ = cf.wait(list(inflight), timeout=0.25 if block else 0, return_when=cf.FIRST_COMPLETED)
        for fut in done:
            item, prefect_future, started = inflight.pop(fut)
            busy.discard(item.case_id or item.path)
            try:
                row = prefect_future.result()
            except Exception as exc:  # noqa: BLE001 - every failure becomes a report row, the run goes on
                row = failed_row(item, exc, time.monotonic() - started)
            if STOP.is_set():
                # A scanner program killed by the same Ctrl-C fails its file: say what really happened.
                row = _settle_after_stop(item, row, time.monotonic() - started)
            on_row(row)

    def stop() -> int:
        from flows.intake_gate import GATE

        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while inflight and time.monotonic() < deadline:
            collect(block=True)
        GATE.close(timeout=STOP_GRACE_SECONDS)  # from here on, nothing more enters a manifest
        collect(block=False)
        for fut, (item, _prefect_future, started) in list(inflight.items()):
            inflight.pop(fut)
            on_row(_settle_after_stop(item, None, time.monotonic() - started))
        return submitted

    while True:
        if STOP.is_set():
            return stop()
        while not exhausted and len(pending) < lookahead:
            if stop_after is not None and submitted + len(pending) >= stop_after:
                exhausted = True
                break
            nxt = next(source, None)
            if nxt is None:
                exhausted = True
            elif nxt.case_id is None and not nxt.case_from_qr:
                on_row(no_case_row(nxt))
            else:
                pending.append(nxt)
        if not pending and not inflight and exhausted:
            return submitted
        # Start what may start: free slots, and the first pending files whose case is idle.
        started_any = False
        for item in list(pending):
            if len(inflight) >= concurrency:
                break
            key = item.case_id or item.path
            if key in busy:
                continue
            pending.remove(item)
            busy.add(key)
            fut = backfill_file.submit(item.path, item.case_id, item.kind, item.case_from_qr, jobs)
            inflight[fut.wrapped_future] = (item, fut, time.monotonic())
            submitted += 1
            started_any = True
        if inflight and (not started_any or len(inflight) >= concurrency or not pending):
            collect(block=True)
        elif not inflight and not started_any and pending:
            time.sleep(0.05)
