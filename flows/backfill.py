"""The archive backfill: years of scanned folders (or a CSV of file, case ID) → stored e-files, resumably.

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
"""
from __future__ import annotations

import concurrent.futures as cf
import csv
import datetime as dt
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from models import CaseId, InvalidCaseId, SohoaError, StorageUnavailable
from models.errors import InputFileError
from flows.common import open_archive, settings

SCAN_SUFFIXES = {".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png"}
REPORT_FIELDS = ["path", "case_id", "document_id", "pages", "status", "reason", "seconds", "worker"]
STATUSES = ("stored", "skipped", "failed", "no-case-id")  # "interrupted" too, after a Ctrl-C
CASE_FROM = ("folder", "csv", "qr")

WORK_POOL = "sohoa"
CHUNK_FLOW = "backfill-chunk"
CHUNK_DEPLOYMENT = f"{CHUNK_FLOW}/sohoa"
FILE_RETRIES = 2
FILE_RETRY_DELAYS = [5, 30]
CHUNK_ATTEMPTS = 3
HEARTBEAT_SECONDS = 5.0
# Ctrl-C: files under way get this long to finish, then whatever is left is reported as interrupted.
STOP_GRACE_SECONDS = 1.5

# Set (by the command's Ctrl-C handler) to stop a running backfill: no new file starts, the report is
# made exact (see run_items) and FINISHED is set with the summary as soon as the report is final.
STOP = threading.Event()
FINISHED = threading.Event()
LAST_SUMMARY: dict[str, Any] = {}


# ------------------------------------------------------------------------------------- listing
@dataclass(frozen=True)
class Item:
    """One source file and the case it belongs to (``case_id`` None: no usable case ID, ``reason`` says why)."""

    path: str
    case_id: str | None
    kind: str | None = None
    reason: str = ""
    case_from_qr: bool = False
    refused: bool = False  # outside the source tree (reason says why): reported, never ingested


def _outside(path: Path, root: Path) -> Item | None:
    """A refusal for a file that is not inside ``root`` once symlinks and '..' are resolved, else None."""
    real = path.resolve()
    if real == root or root in real.parents:
        return None
    return Item(path=str(path), case_id=None, refused=True,
                reason=f"tệp nằm ngoài thư mục nguồn ({real}); dùng --allow-outside nếu đó là chủ ý "
                       f"(the file is outside the source tree ({real}); use --allow-outside if that is meant)")


def _case_of_folder(path: Path, root: Path) -> str | None:
    """The nearest folder (from the file upwards, up to ``root``) whose name is a valid case ID."""
    for folder in path.parents:
        if CaseId.is_valid(folder.name):
            return str(CaseId.parse(folder.name))
        if folder == root or folder == folder.parent:
            return None
    return None


def _walk_files(root: Path, *, exclude: Path | None = None) -> Iterator[Path]:
    """Scan files under ``root`` in a stable order (sorted per folder), streamed, hidden entries skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in SCAN_SUFFIXES:
                yield here / name


def iter_source(source: Path, *, case_from: str = "folder", exclude: Path | None = None,
                allow_outside: bool = False) -> Iterator[Item]:
    """Stream the items of a directory tree or a CSV of ``path,case_id[,kind]``; never guesses a case.

    Files must lie inside the tree (or the CSV's folder) once symlinks and '..' are resolved;
    others come back refused unless ``allow_outside``.
    """
    source = Path(source).resolve()
    if case_from == "csv" or (source.is_file() and source.suffix.lower() == ".csv"):
        for item in _iter_csv(source):
            refusal = None if allow_outside else _outside(Path(item.path), source.parent)
            yield refusal or item
        return
    if not source.is_dir():
        raise InputFileError(f"{source} is neither a folder nor a CSV file of path,case_id[,kind].",
                             f"{source} không phải thư mục cũng không phải tệp CSV đường_dẫn,mã_hồ_sơ[,loại].")
    for path in _walk_files(source, exclude=exclude):
        refusal = None if allow_outside else _outside(path, source)
        if refusal is not None:
            yield refusal
            continue
        if case_from == "qr":
            yield Item(path=str(path), case_id=None, case_from_qr=True)
            continue
        case = _case_of_folder(path, source)
        if case is None:
            yield Item(path=str(path), case_id=None,
                       reason="không có thư mục nào mang mã hồ sơ hợp lệ (no folder named with a valid case ID)")
        else:
            yield Item(path=str(path), case_id=case)


def _iter_csv(csv_path: Path) -> Iterator[Item]:
    """Rows of ``path,case_id[,kind]`` (a header row is allowed); relative paths are relative to the CSV."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if number == 1 and row[0].strip().lower() == "path":
                continue
            path = Path(row[0].strip())
            path = path if path.is_absolute() else (csv_path.parent / path)
            text = row[1].strip() if len(row) > 1 else ""
            kind = (row[2].strip() or None) if len(row) > 2 else None
            try:
                yield Item(path=str(path.resolve()), case_id=str(CaseId.parse(text)), kind=kind)
            except InvalidCaseId as exc:
                reason = (f"dòng {number}: {exc.message_vi} (line {number}: {exc.message_en})" if text
                          else f"dòng {number}: thiếu mã hồ sơ (line {number}: no case ID)")
                yield Item(path=str(path.resolve()), case_id=None, kind=kind, reason=reason)


def case_from_first_page(path: Path, work_root: Path) -> tuple[str | None, str]:
    """The case ID on the first page's QR code (a cover sheet or receipt), or None and the reason."""
    import shutil

    from pipeline.document import check_pages
    from pipeline.reader import sha256_of

    from flows.intake import _claim_workdir

    workdir = _claim_workdir(work_root, f"qr-{sha256_of(path)[:20]}")
    try:
        outcomes = check_pages([path], workdir=workdir, jobs=1, pages={1}, detect_qr=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finding = outcomes[0].qr if outcomes else None
    if finding is None:
        return None, "trang đầu không có mã QR mã hồ sơ (no case-ID QR code on the first page)"
    if finding.case_id is None:
        return None, (f"mã QR trang đầu không phải mã hồ sơ hợp lệ: {finding.text!r} "
                      f"(the first page's QR code is not a valid case ID)")
    return str(finding.case_id), ""


# ------------------------------------------------------------------------------------- one file
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
    from flows.intake import GATE
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
        from flows.intake import GATE

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


# ------------------------------------------------------------------------------------- report
class ReportWriter:
    """Appends report rows to a CSV as they come (flushed), and counts them for the summary."""

    def __init__(self, path: Path | None, *, append: bool = False) -> None:
        self.path = path
        self.counts: dict[str, int] = dict.fromkeys(STATUSES, 0)
        self.pages = 0
        self._file = None
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not (append and path.exists() and path.stat().st_size > 0)
            self._file = open(path, "a" if not fresh else "w", newline="", encoding="utf-8")  # noqa: SIM115
            self._writer = csv.DictWriter(self._file, fieldnames=REPORT_FIELDS, extrasaction="ignore")
            if fresh:
                self._writer.writeheader()
                self._file.flush()

    def add(self, row: dict[str, Any]) -> None:
        """Record one finished file."""
        with self._lock:
            self.counts[row["status"]] = self.counts.get(row["status"], 0) + 1
            if row["status"] == "stored" and str(row.get("pages") or "").isdigit():
                self.pages += int(row["pages"])
            if self._file is not None:
                self._writer.writerow(row)
                self._file.flush()

    @property
    def files(self) -> int:
        return sum(self.counts.values())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a report CSV (empty when the file does not exist yet)."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


class Progress:
    """Files and pages done, rate, ETA on stderr: a Rich bar on a terminal, a plain status line elsewhere."""

    def __init__(self, total_files: int | None, *, stream=None, every: float | None = None) -> None:
        from rich.console import Console

        self.total = total_files
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self._last = 0.0
        self._console = Console(file=self.stream, highlight=False)
        self._tty = self._console.is_terminal
        # On a terminal Rich redraws the bar itself; in a log file (runs of days) one line every 30 s.
        self.every = every if every is not None else (0.5 if self._tty else 30.0)
        self._bar = self._task = None
        if self._tty:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress, SpinnerColumn,
                                       TextColumn, TimeElapsedColumn, TimeRemainingColumn)

            self._bar = RichProgress(SpinnerColumn(), TextColumn("backfill"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("tệp/files"), TimeElapsedColumn(), TextColumn("còn/left"),
                                     TimeRemainingColumn(), TextColumn("{task.fields[detail]}"),
                                     console=self._console, redirect_stdout=False)  # stdout: the summary
            self._task = self._bar.add_task("backfill", total=total_files, detail="")
            self._bar.start()

    def line(self, files: int, pages: int, counts: dict[str, int]) -> str:
        """The text of the status line."""
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = pages / elapsed * 60
        head = f"{files}/{self.total} tệp ({100 * files / self.total:.0f}%)" if self.total else f"{files} tệp"
        eta = "–"
        if self.total and files:
            eta = str(dt.timedelta(seconds=int(elapsed / files * (self.total - files))))
        detail = " ".join(f"{k} {counts.get(k, 0)}" for k in STATUSES)
        return f"[backfill] {head} · {pages} trang · {rate:.1f} trang/phút · còn lại ~{eta} · {detail}"

    def update(self, files: int, pages: int, counts: dict[str, int], *, force: bool = False) -> None:
        """Redraw at most every ``every`` seconds (always when ``force``, which also ends the bar)."""
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return
        self._last = now
        if self._bar is not None:
            rate = pages / max(now - self.started, 1e-6) * 60
            detail = f"· {pages} trang · {rate:.1f} trang/phút · " + " ".join(f"{k} {counts.get(k, 0)}"
                                                                            for k in STATUSES)
            self._bar.update(self._task, completed=files, detail=detail)
            if force:
                self._bar.stop()  # the last state stays on the screen, above the summary
            return
        self.stream.write(self.line(files, pages, counts) + "\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """One line about one file (a failure): above the bar on a terminal, a plain line elsewhere."""
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False, soft_wrap=True)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()


def count_files(source: Path, *, case_from: str, exclude: Path | None = None, allow_outside: bool = False) -> int:
    """How many files the listing holds (a streamed pass, names only), for the ETA."""
    return sum(1 for _ in iter_source(source, case_from=case_from, exclude=exclude, allow_outside=allow_outside))


# ------------------------------------------------------------------------------------- dry run
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


def parts_dir_for(report: Path) -> Path:
    """The shared folder where chunks write their rows: next to the report."""
    return Path(f"{report}.parts")


# ------------------------------------------------------------------------------------- flows
@dataclass
class Summary:
    """What a backfill did, for the closing lines and the CLI's exit code."""

    counts: dict[str, int] = field(default_factory=dict)
    files: int = 0
    pages: int = 0
    seconds: float = 0.0
    report: str | None = None
    mode: str = "local"
    workers: list[str] = field(default_factory=list)
    interrupted: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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
    from flows.intake import GATE

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


@flow(name=CHUNK_FLOW, log_prints=False)
def backfill_chunk(files: list[dict[str, Any]], rows_path: str, concurrency: int = 2,
                   jobs: int | None = 1) -> dict[str, int]:
    """One share of a distributed backfill, run by a worker: ingest these files, write their rows."""
    rows = Path(rows_path)
    beat = rows.with_suffix(".alive")
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.is_set():
            beat.touch()
            stop.wait(HEARTBEAT_SECONDS)

    writer = ReportWriter(rows, append=True)
    thread = threading.Thread(target=heartbeat, name="backfill-heartbeat", daemon=True)
    thread.start()
    try:
        run_items((Item(**f) for f in files), concurrency=concurrency, on_row=writer.add, jobs=jobs)
    finally:
        stop.set()
        writer.close()
    return writer.counts


# ------------------------------------------------------------------------------------- distributed
@dataclass
class _Chunk:
    number: int
    files: list[Item]
    attempt: int = 0
    run_id: Any = None
    rows_path: Path | None = None
    submitted_at: float = 0.0
    kept: list[dict[str, str]] = field(default_factory=list)  # rows of earlier, failed attempts


def chunks_of(items: Iterable[Item], *, size: int, on_no_case: Callable[[Item], None]) -> Iterator[list[Item]]:
    """Cut the listing into chunks of about ``size`` files that end where a case ends (up to 4× size)."""
    chunk: list[Item] = []
    for item in items:
        if item.case_id is None and not item.case_from_qr:
            on_no_case(item)
            continue
        if chunk and (len(chunk) >= 4 * size or (len(chunk) >= size and item.case_id != chunk[-1].case_id)):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def chunk_deployment_exists() -> bool:
    """True when a ``sohoa worker`` has registered the chunk deployment on the configured server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(CHUNK_DEPLOYMENT)
        except ObjectNotFound:
            return False
    return True


def run_chunks(items: Iterable[Item], *, parts_dir: Path, on_row: Callable[[dict[str, Any]], None],
               concurrency: int, jobs: int | None, chunk_size: int, chunks_in_flight: int,
               stale_after: float, on_tick: Callable[[int, int], None] | None = None,
               poll: float = 2.0) -> None:
    """Run chunks as deployment runs on the work pool, ``chunks_in_flight`` at a time, and collect rows."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    parts_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logger = get_run_logger()
    inflight: dict[int, _Chunk] = {}

    def submit(chunk: _Chunk) -> None:
        done_paths = {r["path"] for r in chunk.kept}
        todo = [f for f in chunk.files if f.path not in done_paths]
        chunk.attempt += 1
        chunk.rows_path = parts_dir / f"{stamp}-chunk{chunk.number:05d}-a{chunk.attempt}.csv"
        run = run_deployment(
            CHUNK_DEPLOYMENT, timeout=0, as_subflow=True,
            flow_run_name=f"chunk-{chunk.number:05d}-a{chunk.attempt} ({len(todo)} tệp)",
            parameters={"files": [asdict(f) for f in todo], "rows_path": str(chunk.rows_path),
                        "concurrency": concurrency, "jobs": jobs})
        chunk.run_id, chunk.submitted_at = run.id, time.monotonic()
        inflight[chunk.number] = chunk

    def finish(chunk: _Chunk, rows: list[dict[str, str]]) -> None:
        for row in chunk.kept + rows:
            on_row(row)
        del inflight[chunk.number]

    def check(client) -> None:
        extra_files = extra_pages = 0
        for chunk in list(inflight.values()):
            state = client.read_flow_run(chunk.run_id).state
            rows = read_rows(chunk.rows_path)
            if state is not None and state.is_completed():
                finish(chunk, rows)
                continue
            beat = chunk.rows_path.with_suffix(".alive")
            last_beat = beat.stat().st_mtime if beat.exists() else None
            silent = (state is not None and state.is_running() and last_beat is not None
                      and time.time() - last_beat > stale_after)
            if state is not None and (state.is_final() or silent):
                if silent:  # the worker died with the run: tell the server so the UI shows it
                    client.set_flow_run_state(chunk.run_id, Crashed(
                        message=f"no heartbeat for {stale_after:.0f} s (worker gone)"), force=True)
                chunk.kept += rows
                reason = state.message or state.type.value
                logger.warning("chunk %d attempt %d ended %s (%s)", chunk.number, chunk.attempt,
                               "silent" if silent else state.type.value, reason)
                if chunk.attempt < CHUNK_ATTEMPTS:
                    submit(chunk)
                else:
                    done_paths = {r["path"] for r in chunk.kept}
                    gone = [failed_row(f, SohoaError(
                        f"the worker's chunk run failed {CHUNK_ATTEMPTS} times ({reason}); run the backfill again",
                        f"lượt chạy trên worker hỏng {CHUNK_ATTEMPTS} lần ({reason}); hãy chạy lại backfill"), 0.0)
                        for f in chunk.files if f.path not in done_paths]
                    finish(chunk, gone)
                continue
            extra_files += len(chunk.kept) + len(rows)
            extra_pages += sum(int(r["pages"]) for r in chunk.kept + rows
                               if r["status"] == "stored" and r["pages"].isdigit())
        if on_tick:
            on_tick(extra_files, extra_pages)

    numbers = iter(range(1, sys.maxsize))
    with get_client(sync_client=True) as client:
        try:
            for files in chunks_of(items, size=chunk_size, on_no_case=lambda it: on_row(no_case_row(it))):
                while len(inflight) >= chunks_in_flight:
                    time.sleep(poll)
                    check(client)
                submit(_Chunk(number=next(numbers), files=files))
            while inflight:
                time.sleep(poll)
                check(client)
        except BaseException:
            # Stopped (Ctrl-C) or broken: cancel our queued and running chunks, so a rerun does not
            # race with them; what they finished is stored and will be skipped.
            from prefect.states import Cancelling

            for chunk in inflight.values():
                try:
                    client.set_flow_run_state(chunk.run_id, Cancelling(message="backfill stopped"), force=True)
                except Exception:  # noqa: BLE001 - best effort while stopping
                    pass
            raise
