"""A folder that behaves like the object store: one file per key, metadata in a hidden-from-list sidecar.

Used on a single machine without MinIO, and in tests as the reference backend. Writes go to a temp
file in the same folder, are fsynced and then renamed into place, so a crash never leaves a
half-written file under a real key.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from models import NotFound, StorageError, StoredObject
from storage.objectstore import (
    CHUNK,
    SHA256_META,
    HashingReader,
    check_key,
    clean_metadata,
    file_digests,
    open_source,
    sha256_bytes,
    sha256_file,
    write_atomic,
)

META_SUFFIX = ".meta.json"
VERSIONS_DIR = ".versions"  # old bytes of replaced objects (what S3 versioning keeps); never listed


def _not_found(key: str) -> NotFound:
    return NotFound(f"No object {key} in the document store.", f"Không có đối tượng {key} trong kho lưu trữ.")


class LocalStore:
    """Objects as files under ``root``; ``<file>.meta.json`` holds size, sha256, content type, metadata."""

    presign_expires = False  # presign() gives a plain file:// path: nothing expires, nothing is signed

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.root.stat().st_mode & 0o077 and self.root.stat().st_uid == os.getuid():
                self.root.chmod(0o700)
        except OSError as exc:
            raise StorageError(f"Cannot create the object folder {self.root}: {exc.strerror}.",
                               f"Không tạo được thư mục lưu trữ {self.root}: {exc.strerror}.") from exc

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    # ------------------------------------------------------------------------------- helpers
    def _path(self, key: str) -> Path:
        check_key(key)
        if key.endswith(META_SUFFIX):
            raise ValueError(f"invalid object key {key!r}: {META_SUFFIX} is reserved")
        return self.root.joinpath(*key.split("/"))

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(path.name + META_SUFFIX)


    def _put(self, key: str, fill, *, metadata: dict[str, str], content_type: str) -> StoredObject:  # type: ignore[no-untyped-def]
        path = self._path(key)
        meta = clean_metadata(metadata)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    streamed = fill(out)
                    out.flush()
                    os.fsync(out.fileno())
                # Verify what landed on disk before it gets its real name.
                sha, _md5, size = file_digests(tmp)
                if (sha, size) != (streamed.sha256.hexdigest(), streamed.size):
                    raise StorageError(
                        f"Upload of {key} was corrupted: wrote {streamed.size} bytes with sha256 "
                        f"{streamed.sha256.hexdigest()}, the file holds {size} bytes with sha256 {sha}.",
                        f"Tải lên {key} bị hỏng: dữ liệu ghi ra không khớp mã kiểm tra.")
                if SHA256_META in meta and meta[SHA256_META] != sha:
                    raise StorageError(
                        f"Upload of {key} does not match its expected sha256 {meta[SHA256_META]} (got {sha}).",
                        f"Tải lên {key} không khớp mã SHA-256 mong đợi.")
                meta[SHA256_META] = sha
                record = {"size": size, "sha256": sha, "content_type": content_type, "metadata": meta}
                # Sidecar first, data last: until the data rename, the key has no (new) file.
                write_atomic(self._meta_path(path),
                                   lambda f: f.write(json.dumps(record, ensure_ascii=False).encode()))
                os.replace(tmp, path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise StorageError(f"Cannot write {key} under {self.root}: {exc.strerror or exc}.",
                               f"Không ghi được {key} vào {self.root}: {exc.strerror or exc}.") from exc
        return StoredObject(key=key, size=size, sha256=sha, metadata=meta, content_type=content_type)

    # ---------------------------------------------------------------------------- interface
    def put_file(self, key: str, path: Path, *, metadata: dict[str, str],
                 content_type: str) -> StoredObject:
        """Copy a file in, hashing while streaming; verified before it becomes visible."""
        def fill(out):  # type: ignore[no-untyped-def]
            reader = HashingReader(open_source(Path(path)))
            try:
                while chunk := reader.read(CHUNK):
                    out.write(chunk)
            finally:
                reader.close()
            return reader

        if not Path(path).is_file():
            raise NotFound(f"The file to store, {path}, does not exist.",
                           f"Tệp cần lưu {path} không tồn tại.")
        # The hash taken before copying is the one the copy must have: a file that changes while
        # it is read (a scanner still writing) is refused rather than stored half-old, half-new.
        meta = dict(metadata)
        meta.setdefault(SHA256_META, file_digests(Path(path))[0])
        return self._put(key, fill, metadata=meta, content_type=content_type)

    def put_bytes(self, key: str, data: bytes, *, metadata: dict[str, str],
                  content_type: str) -> StoredObject:
        """Store bytes; the sha256 is computed from ``data``."""
        import io

        def fill(out):  # type: ignore[no-untyped-def]
            reader = HashingReader(io.BytesIO(data))
            out.write(reader.read())
            return reader

        meta = dict(metadata)
        meta.setdefault(SHA256_META, sha256_bytes(data))
        return self._put(key, fill, metadata=meta, content_type=content_type)

    def get_file(self, key: str, dest: Path) -> Path:
        """Copy the object to ``dest`` atomically."""
        src = self._path(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(src, "rb") as f:
                write_atomic(dest, lambda out: shutil.copyfileobj(f, out, CHUNK))
        except FileNotFoundError:
            raise _not_found(key) from None
        return dest

    def get_bytes(self, key: str) -> bytes:
        """Read the whole object."""
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise _not_found(key) from None

    def stat(self, key: str) -> StoredObject | None:
        """From the sidecar; a file without one (copied in by hand) is hashed on the spot."""
        path = self._path(key)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        try:
            record = json.loads(self._meta_path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            sha, _md5, size = file_digests(path)
            return StoredObject(key=key, size=size, sha256=sha, metadata={})
        meta = dict(record.get("metadata", {}))
        return StoredObject(key=key, size=size, sha256=meta.get(SHA256_META, record.get("sha256", "")),
                            metadata=meta, content_type=record.get("content_type", "application/octet-stream"))

    def exists(self, key: str) -> bool:
        """True when the file is there."""
        return self._path(key).is_file()

    def list(self, prefix: str) -> Iterator[str]:
        """Keys under ``prefix`` in key order; sidecars and temp files are not objects."""
        found: list[str] = []
        # Walk only the folder the prefix names, not the whole store.
        start = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root)
            for name in filenames:
                if name.startswith(".") or name.endswith(META_SUFFIX):
                    continue
                key = "/".join((*rel.parts, name))
                if key.startswith(prefix):
                    found.append(key)
        yield from sorted(found)

    def delete(self, key: str) -> None:
        """Remove the file and its sidecar."""
        path = self._path(key)
        path.unlink(missing_ok=True)
        self._meta_path(path).unlink(missing_ok=True)

    def keep_version(self, key: str) -> Path | None:
        """Copy the object's current bytes and metadata under ``.versions/<key>/`` before it is replaced.

        The folder store's answer to S3 versioning for deliberate replacements (``sohoa
        repair-stacks``); returns the copy, or None when there is no object yet.
        """
        path = self._path(key)
        if not path.is_file():
            return None
        stat = self.stat(key)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.root.joinpath(VERSIONS_DIR, *key.split("/"), f"{stamp}-{(stat.sha256 if stat else '')[:16]}")
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "rb") as f:
            write_atomic(target, lambda out: shutil.copyfileobj(f, out, CHUNK))
        meta = self._meta_path(path)
        if meta.is_file():
            shutil.copyfile(meta, target.with_name(target.name + META_SUFFIX))
        return target

    def versions(self, key: str) -> list[Path]:
        """The kept old versions of a key, oldest first (not counting the current object)."""
        folder = self.root.joinpath(VERSIONS_DIR, *check_key(key).split("/"))
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if not p.name.endswith(META_SUFFIX) and not p.name.startswith("."))

    def purge_prefix(self, prefix: str) -> list[dict[str, str]]:
        """Destroy every object under ``prefix`` and every kept version of it (disposal); what was destroyed."""
        destroyed: list[dict[str, str]] = []
        for key in list(self.list(prefix)):
            stat = self.stat(key)
            destroyed.append({"key": key, "version": "current", "sha256": stat.sha256 if stat else ""})
            self.delete(key)
        live = self.root.joinpath(*prefix.rstrip("/").split("/"))
        if live.is_dir() and not any(p.is_file() for p in live.rglob("*")):
            shutil.rmtree(live)  # the empty folders would still name the case
        folder = self.root.joinpath(VERSIONS_DIR, *prefix.rstrip("/").split("/"))
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if path.is_file() and not path.name.endswith(META_SUFFIX):
                    key = "/".join(path.parent.relative_to(self.root / VERSIONS_DIR).parts)
                    destroyed.append({"key": key, "version": path.name, "sha256": sha256_file(path)})
            shutil.rmtree(folder)
        return destroyed

    def residue(self, prefix: str) -> list[str]:
        """Anything left of ``prefix``: objects, sidecars or kept versions (empty after a disposal)."""
        left = [str(p) for p in self.root.joinpath(*prefix.rstrip("/").split("/")).rglob("*") if p.is_file()] \
            if self.root.joinpath(*prefix.rstrip("/").split("/")).is_dir() else []
        versions = self.root.joinpath(VERSIONS_DIR, *prefix.rstrip("/").split("/"))
        return left + ([str(p) for p in versions.rglob("*") if p.is_file()] if versions.is_dir() else [])

    def presign(self, key: str, *, expires: dt.timedelta) -> str:
        """A file:// URL (a folder has no expiry; ``expires`` is accepted for the same signature)."""
        path = self._path(key)
        if not path.is_file():
            raise _not_found(key)
        return path.as_uri()
