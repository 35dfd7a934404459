"""The hot folder: what a counter scanner writes into INBOX becomes stored e-files, one log line per file.

A file is taken only once it is complete (its size and time stopped changing for ``settle``
seconds and it ends the way its format ends), ingested through the intake flow, then moved to
``done/``; a rejected file goes to ``failed/`` and a file with pages that have no case ID to
``needs-case-id/``, each with a ``.reason.txt`` in Vietnamese and English. The page verdicts
(``<name>.check.txt``) are written next to the file before OCR starts and travel with it.
A file is claimed before anything else by renaming it into ``INBOX/.processing/<host>@<pid>-<id>/``
(atomic), so two watchers on one inbox never take the same file; what a stopped watcher of this
machine had claimed goes back into INBOX when a watcher starts. State lives in the folders themselves: restarting the watcher picks up whatever is still in
INBOX, and a file that was stored just before a crash is recognised by its SHA-256 (already
stored), so nothing is processed twice and nothing is forgotten.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models import CaseId, InvalidCaseId
from pipeline.reader import looks_complete

log = logging.getLogger("sohoa.watch")

CHECK_SUFFIX = ".check.txt"
CLAIM_DIR = ".processing"  # INBOX/.processing/<host>@<pid>-<id>/: files a watcher has taken
IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".partial", ".reason.txt", ".report.json", ".report.txt",
                    CHECK_SUFFIX)
STORED = ("stored", "already-stored")
# The store was down: the intake kept a copy in its local spool and sends it later (flows/spool.py),
# so the scan is safe and the operator has nothing to redo.
SAFE = (*STORED, "spooled")

# ingest(path, case_id or None) -> one report per dossier found in the file (see flows/desk.py).
Ingest = Callable[[Path, str | None], list[dict[str, Any]]]


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float  # when this size/mtime was first seen


@dataclass
class HotFolder:
    """Polls ``inbox`` and hands complete files to ``ingest``; sorts them into done, failed, needs-case-id."""

    inbox: Path
    done: Path
    failed: Path
    ingest: Ingest
    needs_case: Path | None = None
    default_case: str | None = None
    workers: int = 2
    settle: float = 2.0
    poll: float = 1.0
    # A file that never looks complete (truncated JPEG, garbage) is judged after this long anyway.
    incomplete_grace: float = 60.0
    # A failure of our own (Prefect not ready, a bug) leaves the file in INBOX; it is tried again after this.
    retry_delays: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0, 120.0)
    _seen: dict[Path, _Seen] = field(default_factory=dict)
    _retry: dict[Path, tuple[int, float]] = field(default_factory=dict)  # path -> (failures, not before)
    _busy: set[Path] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.inbox, self.done, self.failed = Path(self.inbox), Path(self.done), Path(self.failed)
        self.needs_case = Path(self.needs_case) if self.needs_case else self.inbox.parent / "needs-case-id"
        if self.default_case:
            self.default_case = str(CaseId.parse(self.default_case))
        for d in (self.inbox, self.done, self.failed, self.needs_case):
            d.mkdir(parents=True, exist_ok=True)
        self._owner = f"{socket.gethostname()}@{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._recover_claims()

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
            with self._lock:
                busy = path in self._busy
                retry = self._retry.get(path)
            if busy or (retry and now < retry[1]):
                continue
            seen = self._seen.get(path)
            if seen is None or (seen.size, seen.mtime) != (st.st_size, st.st_mtime):
                self._seen[path] = _Seen(st.st_size, st.st_mtime, now)
                continue
            if now - seen.since < self.settle:
                continue
            # Scanners pre-allocate and pause: a stable size alone is not proof the file is whole.
            if looks_complete(path) or now - seen.since > self.incomplete_grace:
                ready.append(path)
        for gone in set(self._seen) - present:
            del self._seen[gone]
        return ready

    def _candidates(self) -> Iterator[Path]:
        outputs = {self.done.resolve(), self.failed.resolve(), self.needs_case.resolve()}
        for path in self.inbox.rglob("*"):
            if not path.is_file() or path.name.startswith(".") or path.name.endswith(IGNORED_SUFFIXES):
                continue
            rel = path.relative_to(self.inbox)
            if any(part.startswith(".") for part in rel.parts) or len(rel.parts) > 2 or (len(rel.parts) == 2 and (self.inbox / rel.parts[0]).resolve() in outputs):
                continue
            yield path

    def case_for(self, path: Path) -> str | None:
        """The case ID from the sub-folder the file is in, else the watcher's default."""
        rel = path.relative_to(self.inbox)
        if len(rel.parts) == 2:
            return str(CaseId.parse(rel.parts[0]))
        return self.default_case

    def _claim(self, path: Path) -> Path | None:
        """Take the file for this watcher alone: rename it into ``INBOX/.processing/<owner>/``.

        A rename is atomic, so when two watchers (two processes, or two machines on one shared
        folder) see the same file, exactly one rename succeeds; the other finds it gone and skips it.
        """
        rel = path.relative_to(self.inbox)
        claimed = self.inbox / CLAIM_DIR / self._owner / rel
        claimed.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            return None
        check = _sidecar(path, CHECK_SUFFIX)
        if check.exists():
            try:
                os.rename(check, _sidecar(claimed, CHECK_SUFFIX))
            except FileNotFoundError:
                pass
        return claimed

    def _recover_claims(self) -> None:
        """Put back into INBOX what a watcher of this machine that is no longer running had claimed."""
        root = self.inbox / CLAIM_DIR
        if not root.is_dir():
            return
        host = socket.gethostname()
        for owner in root.iterdir():
            name_host, _, rest = owner.name.rpartition("@")
            pid = rest.split("-", 1)[0]
            if name_host != host or not pid.isdigit() or _alive(int(pid)) or owner.name == self._owner:
                continue
            for f in sorted(p for p in owner.rglob("*") if p.is_file()):
                back = self.inbox / f.relative_to(owner)
                back.parent.mkdir(parents=True, exist_ok=True)
                if not back.exists():
                    os.replace(f, back)
                    log.info("RECOVERED     %s (claimed by a watcher that stopped)", back.relative_to(self.inbox))
            shutil.rmtree(owner, ignore_errors=True)

    def handle(self, path: Path) -> dict[str, Any] | None:
        """Claim one complete file, ingest it, move it to done/, failed/ or needs-case-id/; returns the report.

        None when another watcher claimed the file first.
        """
        rel = path.relative_to(self.inbox)
        claimed = self._claim(path)
        if claimed is None:
            log.info("SKIPPED       %s (taken by another watcher)", rel)
            return None
        try:
            report = self._handle_claimed(claimed, rel, origin=path)
            if report.get("outcome") == "waiting":
                self._unclaim(claimed, path)  # our failure: back into INBOX, tried again later
            return report
        except BaseException:
            # Could not file it away (e.g. the done/ disk is full): back into INBOX, tried again later.
            self._unclaim(claimed, path)
            raise

    def _unclaim(self, claimed: Path, origin: Path) -> None:
        """Put a claimed file (and its page verdicts) back where it was in INBOX."""
        check = _sidecar(claimed, CHECK_SUFFIX)
        if check.exists() and not _sidecar(origin, CHECK_SUFFIX).exists():
            os.replace(check, _sidecar(origin, CHECK_SUFFIX))
        if claimed.exists() and not origin.exists():
            os.replace(claimed, origin)

    def _handle_claimed(self, path: Path, rel: Path, *, origin: Path) -> dict[str, Any]:
        started = time.perf_counter()
        case: str | None = None
        try:
            case = self.case_for(self.inbox / rel)
        except InvalidCaseId as exc:
            results = [{"source_name": path.name, "status": "failed", "error": exc.user_message(),
                        "message_vi": f"Thư mục '{rel.parts[0]}' không phải mã hồ sơ. {exc.message_vi}",
                        "message_en": f"The folder '{rel.parts[0]}' is not a case ID. {exc.message_en}"}]
        else:
            try:
                results = self.ingest(path, case)
            except Exception as exc:  # noqa: BLE001 - the service boundary: one file must never stop the service
                # Our failure (Prefect not ready, a crash in our code), not the scan's: the file stays in
                # INBOX and is tried again later; it never lands in failed/ for something it did not do.
                with self._lock:
                    failures = self._retry.get(origin, (0, 0.0))[0] + 1
                    delay = self.retry_delays[min(failures, len(self.retry_delays)) - 1]
                    self._retry[origin] = (failures, time.monotonic() + delay)
                log.exception("ĐANG CHỜ %s: lỗi của hệ thống, thử lại sau %.0f s (waiting: our failure, %s: %s; "
                              "trying again in %.0f s)", rel, delay, type(exc).__name__, exc, delay)
                return {"source": str(rel), "outcome": "waiting", "case_id": case, "results": []}
        with self._lock:
            self._retry.pop(origin, None)
        outcome = _outcome(results)
        folder = {"done": self.done, "failed": self.failed, "needs-case-id": self.needs_case}[outcome]
        target = _unique(folder / rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        report = {"source": str(rel), "outcome": outcome, "case_id": case, "results": results}
        _sidecar(target, ".report.json").write_text(
            json.dumps(report, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
        if outcome != "done":
            _sidecar(target, ".reason.txt").write_text(_reason_text(results), encoding="utf-8")
        check = _sidecar(path, CHECK_SUFFIX)
        if check.exists():
            _move(check, _sidecar(target, CHECK_SUFFIX))
        _move(path, target)
        log.info("%-13s %s → %s %s %.1fs", outcome.upper(), rel, target.relative_to(folder.parent),
                 _summary(results), time.perf_counter() - started)
        return report

    def run(self, stop: threading.Event | None = None, *, max_files: int | None = None) -> int:
        """Serve until ``stop`` is set (or ``max_files`` were handled); returns the number handled."""
        stop = stop or threading.Event()
        handled = 0
        futures: list[Future] = []
        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="sohoa-watch") as pool:
            while not stop.is_set():
                # Never queue more than the pool runs: a file still queued stays visibly in INBOX.
                free = self.workers - len(futures)
                for path in self.ready_files()[:max(0, free)]:
                    with self._lock:
                        self._busy.add(path)
                    futures.append(pool.submit(self._handle_and_release, path))
                for f in [f for f in futures if f.done()]:
                    futures.remove(f)
                    if f.result():
                        handled += 1
                if max_files is not None and handled >= max_files:
                    break
                stop.wait(self.poll)
            for f in futures:
                f.result()
        return handled

    def _handle_and_release(self, path: Path) -> bool:
        """Handle one file; True when it was filed away (done, failed, needs-case-id), False when it waits."""
        try:
            return self.handle(path)["outcome"] != "waiting"
        except Exception:  # noqa: BLE001 - the service boundary: e.g. the done/ disk is full
            log.exception("could not file away %s; it stays in the inbox", path)
            return False
        finally:
            with self._lock:
                self._busy.discard(path)
                self._seen.pop(path, None)


def _outcome(results: list[dict[str, Any]]) -> str:
    statuses = {r.get("status") for r in results}
    if not results or statuses - set(SAFE) - {"needs-case-id"}:
        return "failed"
    return "needs-case-id" if "needs-case-id" in statuses else "done"


def _summary(results: list[dict[str, Any]]) -> str:
    parts = []
    for r in results:
        if r.get("status") in SAFE:
            parts.append(f"{r.get('case_id')}/{r.get('document_id')} {r.get('page_count', '?')}p {r['status']}")
        elif r.get("status") == "needs-case-id":
            parts.append(f"pages {r.get('stack_pages')} need a case ID")
        else:
            parts.append(f"reason={r.get('message_en') or r.get('error')}")
    issues = next((r["stack"]["issues"] for r in results if r.get("stack")), [])
    if issues:
        parts.append(f"{len(issues)} stack issue(s): " + ", ".join(f"p{i['page']} {i['kind']}" for i in issues))
    return "; ".join(parts)


def _reason_text(results: list[dict[str, Any]]) -> str:
    """Why the file is not in done/: every failed or unassigned dossier, Vietnamese then English."""
    vi, en = [], []
    for r in results:
        if r.get("status") in SAFE:
            vi.append(f"Đã lưu: hồ sơ {r.get('case_id')}, tài liệu {r.get('document_id')}.")
            en.append(f"Stored: case {r.get('case_id')}, document {r.get('document_id')}.")
            continue
        vi.append(r.get("message_vi") or r.get("error") or "")
        en.append(r.get("message_en") or r.get("error") or "")
    if not results:
        vi.append("Không có kết quả nào cho tệp này.")
        en.append("No result for this file.")
    issues = next((r["stack"]["issues"] for r in results if r.get("stack")), [])
    vi += [i["message_vi"] for i in issues]
    en += [i["message_en"] for i in issues]
    return "\n".join(vi) + "\n\n" + "\n".join(en) + "\n"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sidecar(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


def _unique(path: Path) -> Path:
    """``path``, or ``name.2.ext``… if a file of that name was handled before."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.stem}.{n}{path.suffix}")).exists():
        n += 1
    return candidate


def _move(src: Path, dst: Path) -> None:
    # os.replace is atomic on one file system; across file systems shutil copies then deletes.
    try:
        os.replace(src, dst)
    except OSError:
        shutil.move(src, dst)
