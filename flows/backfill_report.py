"""The backfill's report: CSV rows written as files finish, the progress line or bar, the summary."""
from __future__ import annotations

import csv
import datetime as dt
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPORT_FIELDS = ["path", "case_id", "document_id", "pages", "status", "reason", "seconds", "worker"]
STATUSES = ("stored", "skipped", "failed", "no-case-id")  # "interrupted" too, after a Ctrl-C


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


def parts_dir_for(report: Path) -> Path:
    """The shared folder where chunks write their rows: next to the report."""
    return Path(f"{report}.parts")


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
