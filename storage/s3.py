"""The S3 backend (MinIO, SeaweedFS, any S3 server) — the only module that imports the minio SDK.

Every SDK call goes through ``_call``, which turns S3 error codes and network failures into
``models.errors``: NotFound (missing key), StorageUnavailable (refused/reset connections, timeouts,
5xx, SlowDown: retry later) and StorageError (access denied, missing bucket: no retry helps).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import os
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import urllib3
from minio import Minio
from minio.commonconfig import ENABLED, GOVERNANCE
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from models import NotFound, StorageError, StorageUnavailable, StoredObject
from storage.objectstore import (
    CHUNK,
    SHA256_META,
    HashingReader,
    check_key,
    clean_metadata,
    file_digests,
    open_source,
)

T = TypeVar("T")

# Objects up to this size go up in one PUT, so the ETag is their MD5 and verifies the upload.
SINGLE_PUT_LIMIT = 64 * 1024 * 1024
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 30.0

_MISSING = {"NoSuchKey", "NoSuchVersion", "NoSuchObject", "ResourceNotFound"}
# Answers a server gives while another client is still creating the bucket.
_BUCKET_RACE = {"NoSuchBucket", "OperationAborted"}
_BUCKET_EXISTS = {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}
BUCKET_ATTEMPTS = 8
BUCKET_RETRY_S = 0.25
_TRANSIENT = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "Throttling",
              "RequestTimeTooSkewed", "OperationAborted", "XMinioServerNotInitialized"}
# Printable ASCII except '%': quoted so non-ASCII values (Vietnamese file names) survive HTTP headers.
_META_SAFE = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in "%")


def _http_client() -> urllib3.PoolManager:
    """Short timeouts and few retries: a dead server is reported in seconds, not minutes."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT, read=READ_TIMEOUT),
        maxsize=10,
        retries=urllib3.Retry(total=2, connect=1, read=1, backoff_factor=0.2,
                              status_forcelist=[500, 502, 503, 504], allowed_methods=None),
    )


def _not_found(key: str) -> NotFound:
    return NotFound(f"No object {key} in the document store.", f"Không có đối tượng {key} trong kho lưu trữ.")


class S3Store:
    """One bucket on an S3 server; the bucket is created on first use, with versioning on."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, bucket: str, secure: bool = False,
                 region: str | None = None, object_lock: bool = False, *,
                 retention_days: int | None = None) -> None:
        parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
        if parsed.scheme:
            secure = parsed.scheme == "https"
        self.endpoint = parsed.netloc
        self.bucket = bucket
        self.object_lock = object_lock
        self.retention_days = retention_days
        self.object_lock_active = False
        self._client = Minio(self.endpoint, access_key=access_key, secret_key=secret_key, secure=secure,
                             region=region, http_client=_http_client())
        self._ready = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r})"

    # ------------------------------------------------------------------------ error mapping
    def _map(self, exc: BaseException, what: str) -> Exception:
        where = f"{what} on {self.endpoint}/{self.bucket}"
        if isinstance(exc, S3Error):
            status = exc.response.status if exc.response is not None else 0
            if exc.code in _MISSING:
                return _not_found(exc.object_name or what)
            if exc.code in _TRANSIENT or status >= 500:
                return StorageUnavailable(f"{where}: {exc.code}")
            return StorageError(f"The document store refused {where}: {exc.code} ({exc.message}).",
                                f"Kho lưu trữ từ chối {where}: {exc.code}.")
        if isinstance(exc, ServerError):
            if exc.status_code >= 500:
                return StorageUnavailable(f"{where}: HTTP {exc.status_code}")
            return StorageError(f"The document store failed {where}: HTTP {exc.status_code}.")
        if isinstance(exc, InvalidResponseError):
            return StorageUnavailable(f"{where}: unexpected response ({str(exc)[:120]})")
        if isinstance(exc, urllib3.exceptions.HTTPError | ConnectionError | TimeoutError):
            reason = getattr(exc, "reason", None) or exc
            return StorageUnavailable(f"{where}: {type(reason).__name__}")
        return StorageError(f"The document store failed {where}: {exc}.")

    _MAPPED = (MinioException, urllib3.exceptions.HTTPError, ConnectionError, TimeoutError)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except self._MAPPED as exc:
            raise self._map(exc, what) from exc

    # ------------------------------------------------------------------------------ bucket
    def ensure_bucket(self) -> None:
        """Create the bucket if missing (versioning on; object lock when asked and supported).

        Several workers may start on a new bucket at once. While one of them creates it, the
        server may answer the others' creation call with BucketAlreadyOwnedByYou (the bucket is
        there: go on) and their creation or versioning call with NoSuchBucket or OperationAborted
        (being created: the steps are tried again for a few seconds before the answer is reported).
        """
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            c, b = self._client, self.bucket
            for attempt in range(BUCKET_ATTEMPTS):
                step = "bucket check"
                try:
                    if not c.bucket_exists(bucket_name=b):
                        step = "bucket creation"
                        try:
                            c.make_bucket(bucket_name=b, object_lock=self.object_lock)
                        except S3Error as exc:
                            if exc.code not in _BUCKET_EXISTS:
                                raise
                            # Another worker made it: go on to versioning (tried again if not ready).
                    step = "enabling versioning"
                    c.set_bucket_versioning(bucket_name=b, config=VersioningConfig(ENABLED))
                    break
                except S3Error as exc:
                    if exc.code not in _BUCKET_RACE or attempt == BUCKET_ATTEMPTS - 1:
                        raise self._map(exc, step) from exc
                    time.sleep(BUCKET_RETRY_S * (attempt + 1))
                except self._MAPPED as exc:
                    raise self._map(exc, step) from exc
            if self.object_lock:
                self._enable_object_lock()
            self._ready = True

    def _enable_object_lock(self) -> None:
        c, b = self._client, self.bucket
        try:
            self._call("reading the object-lock configuration", lambda: c.get_object_lock_config(bucket_name=b))
        except StorageUnavailable:
            raise
        except StorageError as exc:
            raise StorageError(
                f"Object lock was requested (SOHOA_S3_OBJECT_LOCK) but bucket {b} on {self.endpoint} has "
                f"none: either the server does not support S3 object lock or the bucket was created "
                f"without it (it can only be turned on when a bucket is created). Detail: {exc}",
                f"Yêu cầu khóa lưu giữ (object lock) nhưng bucket {b} không hỗ trợ hoặc được tạo không có khóa.",
            ) from exc
        if self.retention_days:
            days = self.retention_days
            self._call("setting default retention", lambda: c.set_object_lock_config(
                bucket_name=b, config=ObjectLockConfig(GOVERNANCE, days, DAYS)))
        self.object_lock_active = True

    def versioning_enabled(self) -> bool:
        """True when the bucket keeps every version of every object."""
        self.ensure_bucket()
        cfg = self._call("reading versioning", lambda: self._client.get_bucket_versioning(bucket_name=self.bucket))
        return cfg.status == ENABLED

    # ---------------------------------------------------------------------------- uploads
    def _upload(self, key: str, reader: HashingReader, *, length: int, sha256: str, md5: str,
                metadata: dict[str, str], content_type: str) -> StoredObject:
        check_key(key)
        self.ensure_bucket()
        meta = clean_metadata(metadata)
        if SHA256_META in meta and meta[SHA256_META] != sha256:
            raise StorageError(f"Upload of {key} does not match its expected sha256 {meta[SHA256_META]}.",
                               f"Tải lên {key} không khớp mã SHA-256 mong đợi.")
        meta[SHA256_META] = sha256
        headers = {k: urllib.parse.quote(v, safe=_META_SAFE) for k, v in meta.items()}
        c, b = self._client, self.bucket
        result = self._call(f"uploading {key}", lambda: c.put_object(
            bucket_name=b, object_name=key, data=reader, length=length, content_type=content_type,
            metadata=headers, part_size=SINGLE_PUT_LIMIT if length > SINGLE_PUT_LIMIT else 0,
            num_parallel_uploads=1))
        problem = None
        if (reader.size, reader.sha256.hexdigest()) != (length, sha256):
            problem = (f"the file changed while it was sent ({reader.size} bytes, sha256 "
                       f"{reader.sha256.hexdigest()}; expected {length} bytes, {sha256})")
        else:
            # Check the version this upload made, not whatever is newest: another writer may
            # already have put a newer version of a shared key (manifest.json).
            stored = self.stat(key, version_id=result.version_id)
            etag = (result.etag or "").strip('"')
            if stored is None:
                problem = "the object is missing right after the upload"
            elif stored.size != length or stored.sha256 != sha256:
                problem = f"the server holds {stored.size} bytes with sha256 {stored.sha256}"
            elif "-" not in etag and etag and etag != md5:
                problem = f"the server's ETag {etag} is not the MD5 {md5} of what was sent"
            elif "-" in etag and self._read_sha256(key) != sha256:
                problem = "the object read back does not match"
        if problem:
            # Remove exactly the bad version, so an earlier good version stays current.
            self._call(f"removing corrupt {key}", lambda: c.remove_object(
                bucket_name=b, object_name=key, version_id=result.version_id))
            raise StorageError(f"Upload of {key} failed verification: {problem}.",
                               f"Tải lên {key} không qua kiểm tra mã SHA-256; hãy gửi lại.")
        return StoredObject(key=key, size=length, sha256=sha256, metadata=meta, content_type=content_type)

    def put_file(self, key: str, path: Path, *, metadata: dict[str, str],
                 content_type: str) -> StoredObject:
        """Hash the file (the sha256 travels in the request headers), upload it hashing again, verify."""
        path = Path(path)
        if not path.is_file():
            raise NotFound(f"The file to store, {path}, does not exist.", f"Tệp cần lưu {path} không tồn tại.")
        sha256, md5, size = file_digests(path)
        reader = HashingReader(open_source(path))
        try:
            return self._upload(key, reader, length=size, sha256=sha256, md5=md5, metadata=metadata,
                                content_type=content_type)
        finally:
            reader.close()

    def put_bytes(self, key: str, data: bytes, *, metadata: dict[str, str],
                  content_type: str) -> StoredObject:
        """Upload bytes and verify."""
        import io

        reader = HashingReader(io.BytesIO(data))
        return self._upload(key, reader, length=len(data), sha256=hashlib.sha256(data).hexdigest(),
                            md5=hashlib.md5(data, usedforsecurity=False).hexdigest(), metadata=metadata,
                            content_type=content_type)

    # ---------------------------------------------------------------------------- reads
    def _stream(self, key: str, sink: Callable[[bytes], object]) -> None:
        check_key(key)
        self.ensure_bucket()
        response = self._call(f"reading {key}",
                              lambda: self._client.get_object(bucket_name=self.bucket, object_name=key))
        try:
            def pump() -> None:
                for chunk in response.stream(CHUNK):
                    sink(chunk)
            self._call(f"reading {key}", pump)
        finally:
            response.close()
            response.release_conn()

    def _read_sha256(self, key: str) -> str:
        h = hashlib.sha256()
        self._stream(key, h.update)
        return h.hexdigest()

    def get_file(self, key: str, dest: Path) -> Path:
        """Download to ``dest`` through a temp file in the same folder (no half files)."""
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                self._stream(key, out.write)
            os.replace(tmp, dest)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return dest

    def get_bytes(self, key: str) -> bytes:
        """The whole object in memory."""
        parts: list[bytes] = []
        self._stream(key, parts.append)
        return b"".join(parts)

    def stat(self, key: str, *, version_id: str | None = None) -> StoredObject | None:
        """Size, sha256 (from user metadata) and metadata (of the latest or the given version); None when missing."""
        check_key(key)
        self.ensure_bucket()
        try:
            obj = self._call(f"stat {key}", lambda: self._client.stat_object(
                bucket_name=self.bucket, object_name=key, version_id=version_id))
        except NotFound:
            return None
        meta: dict[str, str] = {}
        for name, value in (obj.metadata or {}).items():
            if name.lower().startswith("x-amz-meta-"):
                meta[name[len("x-amz-meta-"):].lower()] = urllib.parse.unquote(value)
        return StoredObject(key=key, size=obj.size or 0, sha256=meta.get(SHA256_META, ""), metadata=meta,
                            content_type=obj.content_type or "application/octet-stream")

    def exists(self, key: str) -> bool:
        """True when the object is there (latest version is not a delete marker)."""
        return self.stat(key) is not None

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix``, recursively, in key order."""
        self.ensure_bucket()
        objects = self._call(f"listing {prefix}", lambda: iter(self._client.list_objects(
            bucket_name=self.bucket, prefix=prefix, recursive=True)))
        while True:
            obj = self._call(f"listing {prefix}", lambda: next(objects, None))
            if obj is None:
                return
            if not obj.is_dir and obj.object_name:
                yield obj.object_name

    def delete(self, key: str) -> None:
        """Remove the object (a delete marker on a versioned bucket: older versions are kept)."""
        check_key(key)
        self.ensure_bucket()
        self._call(f"deleting {key}", lambda: self._client.remove_object(bucket_name=self.bucket, object_name=key))

    def presign(self, key: str, *, expires: dt.timedelta) -> str:
        """A presigned GET URL (at most 7 days, the S3 limit); raises NotFound for a missing key."""
        if self.stat(key) is None:
            raise _not_found(key)
        return self._call(f"presigning {key}", lambda: self._client.presigned_get_object(
            bucket_name=self.bucket, object_name=key, expires=expires))

    def purge_prefix(self, prefix: str) -> list[dict[str, str]]:
        """Destroy every version and delete marker of every key under ``prefix`` (disposal).

        Governance-mode locks are bypassed: a disposal runs only after two people decided it, and a
        lock that agrees with the record's period has expired by then anyway.
        """
        self.ensure_bucket()
        objs = self._call(f"listing versions under {prefix}", lambda: list(self._client.list_objects(
            bucket_name=self.bucket, prefix=prefix, recursive=True, include_version=True)))
        destroyed: list[dict[str, str]] = []
        for o in objs:
            name, vid = o.object_name, o.version_id
            if not name:
                continue
            sha = ""
            if not o.is_delete_marker:
                stat = self.stat(name, version_id=vid)
                sha = stat.sha256 if stat else ""
            self._call(f"destroying {name} version {vid}", lambda n=name, v=vid: self._client._execute(
                "DELETE", self.bucket, n, query_params={"versionId": v} if v else None,
                headers={"x-amz-bypass-governance-retention": "true"}))
            destroyed.append({"key": name, "version": vid or "null",
                              "sha256": sha, **({"delete_marker": "true"} if o.is_delete_marker else {})})
        return destroyed

    def residue(self, prefix: str) -> list[str]:
        """Every version or delete marker still under ``prefix`` (empty after a disposal)."""
        self.ensure_bucket()
        objs = self._call(f"listing versions under {prefix}", lambda: list(self._client.list_objects(
            bucket_name=self.bucket, prefix=prefix, recursive=True, include_version=True)))
        return [f"{o.object_name}@{o.version_id}" for o in objs if o.object_name]

    def object_lock_supported(self) -> bool:
        """True when the bucket has an object-lock configuration (retention can be set per object)."""
        self.ensure_bucket()
        try:
            self._call("reading the object-lock configuration",
                       lambda: self._client.get_object_lock_config(bucket_name=self.bucket))
        except StorageUnavailable:
            raise
        except StorageError:
            return False
        return True

    def lock_until(self, key: str, until: dt.date) -> None:
        """Governance retention on the current version of ``key`` until the given day (UTC midnight)."""
        from minio.retention import Retention

        when = dt.datetime.combine(until, dt.time(), tzinfo=dt.UTC)
        self._call(f"setting retention on {key}", lambda: self._client.set_object_retention(
            bucket_name=self.bucket, object_name=key, config=Retention(GOVERNANCE, when)))

    def locked_until(self, key: str) -> dt.datetime | None:
        """The retain-until time of the current version of ``key``, or None when it has no retention."""
        try:
            r = self._call(f"reading retention of {key}", lambda: self._client.get_object_retention(
                bucket_name=self.bucket, object_name=key))
        except StorageError:
            return None
        return r.retain_until_date if r else None

    def versions(self, key: str) -> list[str]:
        """Version ids of a key, newest first (for audits and tests of versioning)."""
        self.ensure_bucket()
        objs = self._call(f"listing versions of {key}", lambda: list(self._client.list_objects(
            bucket_name=self.bucket, prefix=key, recursive=True, include_version=True)))
        return [o.version_id for o in objs if o.object_name == key and o.version_id]
