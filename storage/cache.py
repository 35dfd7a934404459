"""The web app's local file cache (downloads, page thumbnails, merged case PDFs): bounded, least recently used first.

Everything under the cache folder can be made again from the object store, so pruning only costs a
later re-fetch. A file is "used" when it is served: ``touch`` moves its modification time to now
(atime is unreliable on relatime/noatime mounts). ``prune`` removes the least recently used files
until the folder is under a fraction of its limit, never a file used within ``grace`` (it may be
being streamed by this or another replica; an open file survives its unlinking anyway), and drops
half-written ``.part`` files and ``.build-*`` folders that a crash left behind.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

LOW_WATER = 0.8            # prune down to 80 % of the limit, so a prune is not needed at every request
STALE_PART_SECONDS = 3600  # a .part or .build- older than this is a crash's leftover


@dataclass(frozen=True)
class PruneReport:
    files_before: int
    bytes_before: int
    removed: int
    bytes_removed: int
    leftovers_removed: int

    @property
    def bytes_after(self) -> int:
        return self.bytes_before - self.bytes_removed


def fill(path: Path, write: Callable[[Path], object]) -> None:
    """Make the cache entry ``path``: ``write`` fills a file of this writer's own, which is then
    renamed into place (or removed, if writing fails). Two requests filling the same entry at once
    (a document page's thumbnails all fetch its PDF) never write one file or rename it from under
    each other. The name ends in ``.part``, so ``prune`` removes a crash's leftover."""
    part = path.with_name(f"{path.name}.{os.getpid()}-{threading.get_ident()}.part")
    try:
        write(part)
        part.replace(path)
    finally:
        part.unlink(missing_ok=True)


def touch(path: Path) -> None:
    """Mark a cached file as just used (a vanished file is not an error: it is fetched again next time)."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(path)


def prune(cache_dir: Path, *, max_bytes: int, grace: float = 600.0, now: float | None = None) -> PruneReport:
    """Bring ``cache_dir`` under ``LOW_WATER * max_bytes`` if it is over ``max_bytes`` (see the module docstring)."""
    now = time.time() if now is None else now
    entries: list[tuple[float, int, Path]] = []
    leftovers = 0
    for root, dirs, files in os.walk(cache_dir):
        for d in list(dirs):
            if d.startswith(".build-"):
                p = Path(root) / d
                with contextlib.suppress(FileNotFoundError):
                    if now - p.stat().st_mtime > STALE_PART_SECONDS:
                        shutil.rmtree(p, ignore_errors=True)
                        leftovers += 1
                dirs.remove(d)
        for name in files:
            p = Path(root) / name
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            if name.endswith(".part"):
                if now - st.st_mtime > STALE_PART_SECONDS:
                    with contextlib.suppress(FileNotFoundError):
                        p.unlink()
                        leftovers += 1
                continue
            entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    removed = freed = 0
    if total > max_bytes:
        target = int(max_bytes * LOW_WATER)
        for mtime, size, p in sorted(entries, key=lambda e: e[0]):
            if total - freed <= target or now - mtime < grace:
                break
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed += 1
                freed += size
    return PruneReport(files_before=len(entries), bytes_before=total, removed=removed, bytes_removed=freed,
                       leftovers_removed=leftovers)
