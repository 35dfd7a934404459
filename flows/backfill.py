"""The archive backfill flow and its dry run: old scanned folders (or a CSV of file, case ID) → e-files.

The listing is streamed and work goes through a bounded in-flight window, so memory does not grow
with the number of files. Resuming needs no journal of our own: a file whose SHA-256 is already in
its case's manifest comes back from ``ingest_one`` as already stored and is reported as skipped.
Every finished file is appended to a CSV at once, so an interrupted run still leaves its report.

Two ways to run:
- local: the ``backfill`` flow ingests the files itself, ``concurrency`` files at a time;
- distributed (``PREFECT_API_URL`` set and a worker has registered the chunk deployment): the
  ``backfill`` flow cuts the listing into chunks that never split a case when it can help it, and
  runs each as a run of the ``backfill-chunk/sohoa`` deployment on the ``sohoa`` work pool; every
  worker takes chunks. A chunk writes its rows to a file in a shared folder and touches a heartbeat
  file; the parent collects the rows, and re-submits the unfinished files of a chunk whose run
  failed or whose worker went silent (killed machine), a bounded number of times.

Two files of one case are never ingested at the same time: the case manifest is a
read-modify-write object, so concurrent writers could lose each other's entries.

The rooms: ``backfill_source`` (the listing), ``backfill_run`` (files in this process),
``backfill_chunks`` (chunks on workers), ``backfill_report`` (report CSV, progress, summary).
"""
from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from models import SohoaError
from models.errors import InputFileError
from flows.backfill_chunks import chunk_deployment_exists, run_chunks  # noqa: F401  (cli/backfill.py: bf.*)
from flows.backfill_report import Progress, ReportWriter, Summary, parts_dir_for
from flows.backfill_run import STOP, run_items
from flows.backfill_source import Item, case_from_first_page, count_files, iter_source
from flows.common import open_archive, settings

# Set with the summary as soon as the report is final (a stopping command waits for it; STOP, set
# on Ctrl-C, lives with the runner in backfill_run).
FINISHED = threading.Event()
LAST_SUMMARY: dict[str, Any] = {}


@dataclass
class DryRun:
    """What a backfill would do, decided without processing a page (QR mode reads first pages)."""

    would_ingest: int = 0
    skipped: int = 0
    no_case_id: int = 0
    unusable: int = 0
    rows: int = 0


def dry_run(source: Path, *, case_from: str, report: Path | None,
            on_row: Callable[[dict[str, Any]], None] | None = None, allow_outside: bool = False) -> DryRun:
    """Classify every file: would ingest, skipped (already stored, same SHA-256), or unusable."""
    from pipeline.reader import sha256_of

    archive = open_archive()
    work_root = settings().data_dir / "work"
    writer = ReportWriter(report)
    result = DryRun()
    try:
        for item in iter_source(source, case_from=case_from, exclude=_exclude_for(report),
                                allow_outside=allow_outside):
            row = {"path": item.path, "case_id": item.case_id or "", "document_id": "", "pages": "",
                   "status": "", "reason": "", "seconds": "", "worker": ""}
            try:
                if item.case_from_qr:
                    case, why = case_from_first_page(Path(item.path), work_root)
                    item = Item(path=item.path, case_id=case, reason=why)
                    row["case_id"] = case or ""
                if item.case_id is None:
                    row |= {"status": "refused" if item.refused else "no-case-id", "reason": item.reason}
                    result.no_case_id += 1
                else:
                    _usable(Path(item.path))
                    sha = sha256_of(Path(item.path))
                    rec = archive.is_stored(item.case_id, sha)
                    if rec is not None:
                        row |= {"status": "skipped", "document_id": rec.document_id, "pages": rec.page_count,
                                "reason": "đã lưu trước đó (already stored, same SHA-256)"}
                        result.skipped += 1
                    else:
                        row |= {"status": "would-ingest"}
                        result.would_ingest += 1
            except (SohoaError, OSError) as exc:
                reason = exc.user_message() if isinstance(exc, SohoaError) else str(exc)
                row |= {"status": "unusable", "reason": reason}
                result.unusable += 1
            result.rows += 1
            if report is not None:
                writer._writer.writerow(row)  # dry-run statuses are not the four final ones
            if on_row:
                on_row(row)
    finally:
        writer.close()
    return result


def _usable(path: Path) -> None:
    """What a dry run can tell without processing a page: the format, and that the file is complete.

    A truncated JPEG (no end marker), a PDF cut after its header (no %%EOF) or with no page, and a
    TIFF whose frames cannot all be walked raise a typed error, as the real run would.
    """
    from models import CorruptFile
    from pipeline.reader import looks_complete, sniff_format

    kind = sniff_format(path)
    if not looks_complete(path):
        raise CorruptFile(path.name, "truncated: the file stops before its end / tệp bị cắt cụt")
    if kind == "pdf":
        from pipeline.extract import page_count

        if page_count(path) == 0:
            raise CorruptFile(path.name, "no pages / không có trang nào")


def _exclude_for(report: Path | None) -> Path | None:
    return parts_dir_for(report).resolve() if report is not None else None


@flow(name="backfill", log_prints=False)
def backfill(source: str, case_from: str = "folder", concurrency: int = 2, report: str | None = None,
             jobs: int | None = 1, stop_after: int | None = None, distributed: bool = False,
             chunk_size: int = 10, chunks_in_flight: int = 4, stale_after: float = 120.0,
             progress: bool = True, allow_outside: bool = False,
             echo: bool = False) -> dict[str, Any]:
    """Ingest a tree or CSV of scans into the archive, bounded and resumable; returns the summary.

    ``echo`` prints one line per file that failed or was interrupted to stderr (the command's view;
    tracebacks stay in the log). ``STOP`` (set on Ctrl-C) ends the run early with an exact report.
    """
    from flows.intake_gate import GATE

    GATE.reset()  # a fresh gate per run (a process may run several backfills)
    FINISHED.clear()
    LAST_SUMMARY.clear()
    logger = get_run_logger()
    src = Path(source).resolve()
    report_path = Path(report).resolve() if report else None
    exclude = _exclude_for(report_path)
    total = count_files(src, case_from=case_from, exclude=exclude, allow_outside=allow_outside) if progress else None
    bar = Progress(total) if progress else None
    writer = ReportWriter(report_path)
    started = time.monotonic()
    workers: set[str] = set()

    def on_row(row: dict[str, Any]) -> None:
        writer.add(row)
        if row.get("worker"):
            workers.add(row["worker"])
        if row["status"] == "failed":
            logger.warning("%s: %s", row["path"], row["reason"])
        if echo and row["status"] in ("failed", "interrupted", "refused"):
            mark = "✗" if row["status"] == "failed" else "…"
            line = f"{mark} {row['path']}: {row['reason']}"
            if bar:
                bar.note(line)
            else:
                print(line, file=sys.stderr, flush=True)
        if bar:
            bar.update(writer.files, writer.pages, writer.counts)

    items = iter_source(src, case_from=case_from, exclude=exclude, allow_outside=allow_outside)
    submitted = 0
    try:
        if distributed:
            if report_path is None:
                raise InputFileError("A distributed backfill needs --report on a folder every worker can write.",
                                     "Chạy phân tán cần --report ở thư mục mà mọi máy worker ghi được.")
            run_chunks(items, parts_dir=parts_dir_for(report_path), on_row=on_row, concurrency=concurrency,
                       jobs=jobs, chunk_size=chunk_size, chunks_in_flight=chunks_in_flight,
                       stale_after=stale_after, on_tick=(lambda extra_files, extra_pages: bar.update(
                           writer.files + extra_files, writer.pages + extra_pages, writer.counts))
                       if bar else None)
        else:
            submitted = run_items(items, concurrency=concurrency, on_row=on_row, jobs=jobs, stop_after=stop_after)
    finally:
        writer.close()
        if bar:
            bar.update(writer.files, writer.pages, writer.counts, force=True)
    summary = Summary(counts=writer.counts, files=writer.files, pages=writer.pages,
                      seconds=time.monotonic() - started, report=str(report_path) if report_path else None,
                      mode="distributed" if distributed else "local", workers=sorted(workers),
                      interrupted=STOP.is_set() or (stop_after is not None and submitted >= stop_after))
    logger.info("backfill done: %s", summary.counts)
    LAST_SUMMARY.update(summary.to_dict())
    FINISHED.set()  # the report is final: a stopping command may leave now (see cli/backfill.py)
    return summary.to_dict()
