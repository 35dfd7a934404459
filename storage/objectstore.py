"""The object-store interface every backend implements, the object key layout, and hashing helpers.

Backends: ``storage.local.LocalStore`` (a folder) and ``storage.s3.S3Store`` (MinIO / SeaweedFS / any S3).
Both compute the SHA-256 while the bytes stream, keep it in the user metadata (``sha256``) and check
the stored object after every upload, so a store that returns from ``put_file`` holds exactly the
bytes it was given.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from models import CaseId, StoredObject

SHA256_META = "sha256"
CHUNK = 1024 * 1024

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_EXT = re.compile(r"^[a-z0-9]{1,10}$")


@runtime_checkable
class ObjectStore(Protocol):
    """A flat key → bytes store with user metadata; keys use ``/`` as separator."""

    def put_file(self, key: str, path: Path, *, metadata: dict[str, str],
                 content_type: str) -> StoredObject:
        """Upload a file, verify the stored copy, return what is now stored."""
        ...

    def put_bytes(self, key: str, data: bytes, *, metadata: dict[str, str],
                  content_type: str) -> StoredObject:
        """Upload bytes, verify the stored copy, return what is now stored."""
        ...

    def get_file(self, key: str, dest: Path) -> Path:
        """Download to ``dest`` (written atomically); raises NotFound."""
        ...

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory; raises NotFound."""
        ...

    def stat(self, key: str) -> StoredObject | None:
        """Size, sha256 and metadata of an object, or None when there is none."""
        ...

    def exists(self, key: str) -> bool:
        """True when the object is there."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix`` (recursive), in key order."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object (no error when it is already gone)."""
        ...

    def presign(self, key: str, *, expires: dt.timedelta) -> str:
        """A URL that lets anyone holding it read the object until it expires."""
        ...


# ---------------------------------------------------------------------------------------- keys
def _segment(value: str | CaseId, what: str) -> str:
    text = str(value).strip()
    if not _SEGMENT.fullmatch(text) or ".." in text:
        raise ValueError(f"{what} {value!r} cannot be used in an object key")
    return text


def case_prefix(case_id: str | CaseId) -> str:
    """``cases/<case>/``: everything of one case lives under it."""
    return f"cases/{_segment(case_id, 'case id')}/"


def document_prefix(case_id: str | CaseId, doc_id: str) -> str:
    """``cases/<case>/documents/<doc>/``."""
    return f"{case_prefix(case_id)}documents/{_segment(doc_id, 'document id')}/"


def source_key(case_id: str | CaseId, doc_id: str, ext: str) -> str:
    """Key of the original scan, never modified: ``cases/<case>/documents/<doc>/source.<ext>``."""
    clean = ext.lower().lstrip(".")
    if not _EXT.fullmatch(clean):
        raise ValueError(f"file extension {ext!r} cannot be used in an object key")
    return f"{document_prefix(case_id, doc_id)}source.{clean}"


def searchable_key(case_id: str | CaseId, doc_id: str) -> str:
    """Key of the searchable PDF/A: ``cases/<case>/documents/<doc>/searchable.pdf``."""
    return f"{document_prefix(case_id, doc_id)}searchable.pdf"


def ocr_key(case_id: str | CaseId, doc_id: str) -> str:
    """Key of the OCR words: ``cases/<case>/documents/<doc>/ocr.json``."""
    return f"{document_prefix(case_id, doc_id)}ocr.json"


def manifest_key(case_id: str | CaseId) -> str:
    """Key of the per-case manifest: ``cases/<case>/manifest.json``."""
    return f"{case_prefix(case_id)}manifest.json"


def stack_key(stack_sha256: str, ext: str) -> str:
    """Key of a whole scanned stack split by cover sheets: ``stacks/<sha256>/source.<ext>``.

    It holds every case's pages of that stack, so it lives apart from the cases: no case lists,
    gets, shows or links it; only intake-managing roles may read it.
    """
    clean = ext.lower().lstrip(".")
    if not _EXT.fullmatch(clean) or not re.fullmatch(r"[0-9a-f]{64}", stack_sha256):
        raise ValueError(f"stack {stack_sha256!r}.{ext!r} cannot be used in an object key")
    return f"stacks/{stack_sha256}/source.{clean}"


def stack_manifest_key(stack_sha256: str) -> str:
    """Key of a stack's record of which pages went to which case: ``stacks/<sha256>/stack.json``."""
    if not re.fullmatch(r"[0-9a-f]{64}", stack_sha256):
        raise ValueError(f"stack {stack_sha256!r} cannot be used in an object key")
    return f"stacks/{stack_sha256}/stack.json"


def entry_key(case_id: str | CaseId, doc_id: str) -> str:
    """Key of one document's manifest entry: ``cases/<case>/entries/<doc>.json`` (written by that document only)."""
    return f"{case_prefix(case_id)}entries/{_segment(doc_id, 'document id')}.json"


def entries_prefix(case_id: str | CaseId) -> str:
    """``cases/<case>/entries/``: one object per document of the case."""
    return f"{case_prefix(case_id)}entries/"


def check_key(key: str) -> str:
    """Reject keys that could escape a folder or that S3 and a file system would treat differently."""
    if not key or key.startswith("/") or key.endswith("/") or "//" in key or "\\" in key:
        raise ValueError(f"invalid object key {key!r}")
    if any(part in (".", "..") or part.startswith(".") for part in key.split("/")):
        raise ValueError(f"invalid object key {key!r}: no '.', '..' or hidden segments")
    return key


def clean_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """Lower-case keys (S3 does) and string values, so both backends return the same dict."""
    out: dict[str, str] = {}
    for k, v in metadata.items():
        name = k.strip().lower().replace("_", "-")
        if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
            raise ValueError(f"metadata name {k!r} must be letters, digits and '-'")
        out[name] = str(v)
    return out


# ------------------------------------------------------------------------------------- hashing
class HashingReader:
    """Wraps a binary file: every byte read also feeds SHA-256 and MD5 (MD5 = S3's single-part ETag)."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        """Read and hash."""
        data = self._raw.read(n)
        self.sha256.update(data)
        self.md5.update(data)
        self.size += len(data)
        return data

    def close(self) -> None:
        """Close the wrapped file."""
        self._raw.close()


def open_source(path: Path) -> BinaryIO:
    """Open a file to upload (one place, so tests can hand a store a file that changes under it)."""
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def file_digests(path: Path) -> tuple[str, str, int]:
    """(sha256 hex, md5 hex, size) of a file, read in 1 MiB chunks."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def sha256_file(path: Path) -> str:
    """SHA-256 hex of a file."""
    return file_digests(path)[0]


def sha256_bytes(data: bytes) -> str:
    """SHA-256 hex of bytes."""
    return hashlib.sha256(data).hexdigest()


def sha256_of_object(store: ObjectStore, key: str, scratch_dir: Path) -> str:
    """Re-read an object from the store and hash what actually comes back (fixity check)."""
    dest = scratch_dir / "fixity.bin"
    try:
        store.get_file(key, dest)
        return sha256_file(dest)
    finally:
        dest.unlink(missing_ok=True)


def write_atomic(dest: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Create a temp file next to ``dest``, let ``fill`` write it, fsync, rename over ``dest``.

    A crash or error at any point leaves either the old ``dest`` or the new one, never half a file.
    """
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
