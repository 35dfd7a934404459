"""The hot folder: what a counter scanner writes into INBOX becomes stored e-files, one line per file.

A file is taken only once it is complete (its size and time stopped changing for ``settle``
seconds and it ends the way its format ends), ingested through the intake flow, then moved to
``done/``; a rejected file goes to ``failed/`` with a ``.reason.txt`` in Vietnamese and English.
State lives in the folders themselves: restarting the watcher picks up whatever is still in
INBOX, and a file that was stored just before a crash is recognised by its SHA-256 (already
stored), so nothing is processed twice and nothing is forgotten.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import CaseId, InvalidCaseId
from pipeline.reader import looks_complete

log = logging.getLogger("sohoa.watch")

IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".reason.txt", ".report.json", ".report.txt")


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float  # when this size/mtime was first seen


@dataclass
class HotFolder:
    """Polls ``inbox`` and hands complete files to ``ingest(path, case_id) -> report dict``."""

    inbox: Path
    done: Path
    failed: Path
    ingest: Callable[[Path, str | None], dict[str, Any]]
    default_case: str | None = None
    workers: int = 2
    settle: float = 2.0
    poll: float = 1.0
    _seen: dict[Path, _Seen] = field(default_factory=dict)
    _busy: set[Path] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for d in (self.inbox, self.done, self.failed):
            d.mkdir(parents=True, exist_ok=True)

    def ready_files(self, now: float | None = None) -> list[Path]:
        """Files in INBOX (and its case-ID sub-folders) that have settled and look complete."""
        now = time.monotonic() if now is None else now
        ready = []
        present = set()
        for path in sorted(self._candidates()):
            present.add(path)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            seen = self._seen.get(path)
            if seen is None or (seen.size, seen.mtime) != (st.st_size, st.st_mtime):
                self._seen[path] = _Seen(st.st_size, st.st_mtime, now)
                continue
            if now - seen.since < self.settle or path in self._busy:
                continue
            # An incomplete-looking file is given a long grace period before it is judged.
            if looks_complete(path) or now - seen.since > max(60.0, 10 * self.settle):
                ready.append(path)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return ready

    def _candidates(self):
        for path in self.inbox.rglob("*"):
            if not path.is_file() or path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES):
                continue
            rel = path.relative_to(self.inbox)
            if len(rel.parts) > 2:
                continue
            yield path

    def case_for(self, path: Path) -> str | None:
        """The case ID from the sub-folder the file is in, else the watcher's default."""
        rel = path.relative_to(self.inbox)
        if len(rel.parts) == 2:
            return str(CaseId.parse(rel.parts[0]))
        return self.default_case

    def handle(self, path: Path) -> dict[str, Any]:
        """Ingest one complete file and move it to done/ or failed/; returns the report."""
        started = time.perf_counter()
        rel = path.relative_to(self.inbox)
        try:
            case = self.case_for(path)
        except InvalidCaseId as exc:
            report = {"source_name": path.name, "status": "failed", "error": exc.user_message(),
                      "message_vi": exc.message_vi, "message_en": exc.message_en}
        else:
            try:
                report = self.ingest(path, case)
            except Exception as exc:  # noqa: BLE001 - the service must survive any one file
                log.exception("internal error on %s", rel)
                report = {"source_name": path.name, "status": "failed",
                          "message_vi": "Lỗi nội bộ khi xử lý tệp; tệp được giữ lại để xử lý lại.",
                          "message_en": f"internal error: {type(exc).__name__}: {exc}"}
        ok = report.get("status") in ("stored", "already-stored")
        target = _unique(( self.done if ok else self.failed) / rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        report_path = target.with_name(target.name + ".report.json")
        report_path.write_text(json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        if not ok:
            target.with_name(target.name + ".reason.txt").write_text(_reason_text(report), encoding="utf-8")
        os.replace(path, target) if _same_fs(path, target) else shutil.move(path, target)
        pages = report.get("page_count") or len(report.get("pages", []))
        log.info("%s %s case=%s doc=%s pages=%s %.1fs%s", "OK  " if ok else "FAIL", rel, report.get("case_id"),
                 report.get("document_id"), pages, time.perf_counter() - started,
                 "" if ok else f" reason={report.get('message_en') or report.get('error')}")
        return report

    def run(self, stop: threading.Event | None = None, *, max_files: int | None = None) -> int:
        """Serve until ``stop`` is set (or ``max_files`` were handled); returns the number handled."""
        stop = stop or threading.Event()
        handled = 0
        futures: list[Future] = []
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            while not stop.is_set():
                for path in self.ready_files():
                    with self._lock:
                        self._busy.add(path)
                    futures.append(pool.submit(self._handle_and_release, path))
                done = [f for f in futures if f.done()]
                for f in done:
                    futures.remove(f)
                    handled += 1
                if max_files is not None and handled >= max_files:
                    break
                stop.wait(self.poll)
            for f in futures:
                f.result()
        return handled

    def _handle_and_release(self, path: Path) -> None:
        try:
            self.handle(path)
        finally:
            with self._lock:
                self._busy.discard(path)
                self._seen.pop(path, None)


def _reason_text(report: dict[str, Any]) -> str:
    vi = report.get("message_vi") or report.get("error") or ""
    en = report.get("message_en") or report.get("error") or ""
    return f"{vi}\n{en}\n"


def _unique(path: Path) -> Path:
    """``path``, or ``name.2.ext``… if a file of that name was handled before."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.stem}.{n}{path.suffix}")).exists():
        n += 1
    return candidate


def _same_fs(a: Path, b: Path) -> bool:
    try:
        return os.stat(a).st_dev == os.stat(b.parent).st_dev
    except OSError:
        return False
