"""Work folders under ``<data dir>/work``: each claimed with its owner's process id, and the ones a
killed run left behind removed (issue 21: they stayed there for ever).

A folder is stale when its owner (host, pid and the process's start time, so a reused pid is not
mistaken for it) is a process of this host that no longer runs and the folder is older than
``SOHOA_WORK_STALE_MINUTES`` (default 10); a folder without an owner record (older runs, other
hosts sharing the data folder) when nothing in it changed for ``SOHOA_WORK_STALE_HOURS`` (default 24).
The sweep runs once per process and work root, at the first claim.
"""
from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from pathlib import Path

OWNER_FILE = ".owner"
_swept: set[Path] = set()


def _setting(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat), '' when unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rpartition(")")[2].split()[19]


def _alive(pid: int, started: str) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _start_time(pid)
    return not (started and now and now != started)  # same pid, another process: the owner is gone


def claim(work_root: Path, name: str) -> Path:
    """A new work folder of this run only, with its owner recorded; stale folders are swept first."""
    work_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = work_root.resolve()
    if root not in _swept:
        _swept.add(root)
        sweep(work_root)
    folder = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=work_root))
    pid = os.getpid()
    (folder / OWNER_FILE).write_text(f"{socket.gethostname()} {pid} {_start_time(pid)}\n", encoding="utf-8")
    return folder


def _newest_change(folder: Path) -> float:
    newest = 0.0
    for dirpath, dirs, files in os.walk(folder):
        for entry in (dirpath, *(os.path.join(dirpath, f) for f in files)):
            try:
                newest = max(newest, os.lstat(entry).st_mtime)
            except OSError:
                continue
    return newest


def is_stale(folder: Path, *, now: float | None = None) -> bool:
    """Whether a work folder was left behind by a run that is over."""
    now = time.time() if now is None else now
    try:
        host, pid, *started = (folder / OWNER_FILE).read_text(encoding="utf-8").split()
        owned = host == socket.gethostname() and pid.isdigit()
    except (OSError, ValueError):
        owned = False
    if owned:
        if _alive(int(pid), started[0] if started else ""):
            return False
        try:
            age = now - folder.stat().st_mtime
        except OSError:
            return False
        return age >= 60 * _setting("SOHOA_WORK_STALE_MINUTES", 10)
    return now - _newest_change(folder) >= 3600 * _setting("SOHOA_WORK_STALE_HOURS", 24)


def sweep(work_root: Path, *, now: float | None = None) -> list[Path]:
    """Remove the stale folders directly under ``work_root``; returns them."""
    removed = []
    try:
        entries = list(work_root.iterdir())
    except OSError:
        return removed
    for folder in entries:
        if folder.is_dir() and not folder.is_symlink() and is_stale(folder, now=now):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
