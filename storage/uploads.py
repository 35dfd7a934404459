"""Uploads as they stream in: files hashed and counted against the limit under ``jobs/.incoming/<id>/``."""
from __future__ import annotations

import hashlib
import os
import shutil
import unicodedata
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from models import UploadTooLarge
from models.jobs import JobFile

CHUNK = 1024 * 1024
INCOMING = ".incoming"


class HasRoot(Protocol):
    """Where uploads go: the job store (storage/jobs.py ``JobStore``, which imports this module)."""

    root: Path


def safe_file_name(name: str) -> str:
    """The operator's file name, made safe to keep on disk (no folders, no control characters)."""
    name = unicodedata.normalize("NFC", str(name or "")).replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip().lstrip(".")
    stem, dot, ext = name.rpartition(".")
    if len(name) > 120:
        name = (stem[:100] + dot + ext[:10]) if dot else name[:120]
    return name or "scan"


class IncomingFile:
    """One file being received: counted against the upload limit and hashed as each chunk is written."""

    def __init__(self, upload: Upload, name: str, rel: str, out) -> None:  # type: ignore[no-untyped-def]
        self.upload, self.name, self.rel, self.out = upload, name, rel, out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.upload.total + self.size > self.upload.limit:
            self.abort()
            raise UploadTooLarge(self.name, self.upload.limit)
        self.digest.update(chunk)
        self.out.write(chunk)

    def abort(self) -> None:
        if not self.out.closed:
            self.out.close()

    def discard(self) -> None:
        """Drop this file (e.g. an empty file field); the upload's other files stay."""
        self.abort()
        (self.upload.dir / self.rel).unlink(missing_ok=True)

    def close(self) -> JobFile:
        """Flush to disk and add the complete file to the upload."""
        self.out.flush()
        os.fsync(self.out.fileno())
        self.out.close()
        self.upload.total += self.size
        job_file = JobFile(name=self.name, path=self.rel, sha256=self.digest.hexdigest(), size=self.size)
        self.upload.files.append(job_file)
        return job_file


class Upload:
    """Files of one upload as they stream in; ``JobStore.commit`` turns them into a job, else nothing remains."""

    def __init__(self, store: HasRoot, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.id = uuid.uuid4().hex
        self.dir = store.root / INCOMING / self.id
        self.dir.mkdir(parents=True)
        self.files: list[JobFile] = []
        self.empty: list[str] = []  # names of chosen files that had no byte (said so, rather than "no file")
        self.total = 0
        self.opened = 0  # files started, kept or discarded: each gets its own folder

    def open_file(self, name: str) -> IncomingFile:
        """Start one file of the upload; ``write`` its bytes as they arrive, then ``close`` it."""
        name = safe_file_name(name)
        self.opened += 1
        rel = f"files/{self.opened:02d}/{name}"
        target = self.dir / rel
        target.parent.mkdir(parents=True)
        return IncomingFile(self, name, rel, open(target, "wb"))

    def add_stream(self, name: str, chunks: Iterable[bytes]) -> JobFile:
        """Write one file from ``chunks``, hashing while it streams; refuses more than the upload limit."""
        incoming = self.open_file(name)
        try:
            for chunk in chunks:
                incoming.write(chunk)
        except BaseException:
            incoming.abort()
            raise
        return incoming.close()

    def add_path(self, path: Path) -> JobFile:
        """Copy a local file into the upload (``sohoa scan`` handing a file to the service)."""
        with open(path, "rb") as f:
            return self.add_stream(Path(path).name, iter(lambda: f.read(CHUNK), b""))

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
