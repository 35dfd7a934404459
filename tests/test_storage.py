"""The object store: one suite run against the local folder and a real SeaweedFS S3 server."""
from __future__ import annotations

import datetime as dt
import hashlib
import os
from pathlib import Path

import pytest

from models import NotFound, StorageError, StorageUnavailable
from storage import objectstore
from storage.objectstore import ObjectStore, manifest_key, ocr_key, searchable_key, source_key
from tests.servers import fetch

CASE = "000.00.14.H56-200203-0118"
PDFISH = b"%PDF-1.7\n" + os.urandom(200_000) + b"\n%%EOF\n"


def test_key_layout() -> None:
    assert source_key(CASE, "abc123", ".TIF") == f"cases/{CASE}/documents/abc123/source.tif"
    assert searchable_key(CASE, "abc123") == f"cases/{CASE}/documents/abc123/searchable.pdf"
    assert ocr_key(CASE, "abc123") == f"cases/{CASE}/documents/abc123/ocr.json"
    assert manifest_key(CASE) == f"cases/{CASE}/manifest.json"
    with pytest.raises(ValueError):
        source_key("../etc", "abc", "pdf")
    with pytest.raises(ValueError):
        source_key(CASE, "abc", "p/df")


def test_put_get_stat_roundtrip(store: ObjectStore, tmp_path: Path) -> None:
    assert isinstance(store, ObjectStore)
    src = tmp_path / "hồ sơ.pdf"
    src.write_bytes(PDFISH)
    key = searchable_key(CASE, "doc1")
    stored = store.put_file(key, src, metadata={"case_id": CASE, "source_name": "Đơn đề nghị.pdf"},
                            content_type="application/pdf")
    assert stored.sha256 == hashlib.sha256(PDFISH).hexdigest()
    assert stored.size == len(PDFISH)

    st = store.stat(key)
    assert st is not None
    assert st.size == len(PDFISH)
    assert st.sha256 == stored.sha256
    assert st.metadata["sha256"] == stored.sha256
    assert st.metadata["case-id"] == CASE
    assert st.metadata["source-name"] == "Đơn đề nghị.pdf"  # Vietnamese survives HTTP headers
    assert st.content_type == "application/pdf"

    assert store.get_bytes(key) == PDFISH
    out = store.get_file(key, tmp_path / "out" / "copy.pdf")
    assert out.read_bytes() == PDFISH
    assert not [p for p in out.parent.iterdir() if p.name != "copy.pdf"], "no temp files left behind"


def test_put_bytes_overwrite_exists_delete(store: ObjectStore) -> None:
    key = ocr_key(CASE, "doc2")
    assert not store.exists(key)
    assert store.stat(key) is None
    store.put_bytes(key, b'{"v": 1}', metadata={}, content_type="application/json")
    store.put_bytes(key, b'{"v": 2}', metadata={}, content_type="application/json")
    assert store.exists(key)
    assert store.get_bytes(key) == b'{"v": 2}'
    assert store.stat(key).sha256 == hashlib.sha256(b'{"v": 2}').hexdigest()
    store.delete(key)
    assert not store.exists(key)
    store.delete(key)  # deleting twice is not an error


def test_missing_key_is_not_found(store: ObjectStore, tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        store.get_bytes("cases/nothing/here.pdf")
    with pytest.raises(NotFound):
        store.get_file("cases/nothing/here.pdf", tmp_path / "x")
    with pytest.raises(NotFound):
        store.presign("cases/nothing/here.pdf", expires=dt.timedelta(minutes=5))
    assert not (tmp_path / "x").exists()


def test_list_is_recursive_sorted_and_hides_sidecars(store: ObjectStore) -> None:
    keys = [source_key(CASE, "d1", "pdf"), searchable_key(CASE, "d1"), ocr_key(CASE, "d2"),
            manifest_key(CASE), manifest_key("000.00.14.H56-200203-0119")]
    for k in keys:
        store.put_bytes(k, k.encode(), metadata={}, content_type="text/plain")
    assert list(store.list(f"cases/{CASE}/")) == sorted(keys[:4])
    assert list(store.list(f"cases/{CASE}/documents/d1/")) == sorted(keys[:2])
    assert list(store.list("cases/000.00.14.H56-200203-011")) == sorted(keys)
    assert list(store.list("nothing/")) == []


def test_presigned_url_serves_the_bytes(store: ObjectStore) -> None:
    key = searchable_key(CASE, "doc3")
    store.put_bytes(key, PDFISH, metadata={}, content_type="application/pdf")
    url = store.presign(key, expires=dt.timedelta(minutes=10))
    assert fetch(url) == PDFISH


class _ChangingFile:
    """A source file that changes while it is read, as when a scanner is still writing it."""

    def __init__(self, raw) -> None:
        self._raw = raw
        self._first = True

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if data and self._first:
            self._first = False
            data = b"X" + data[1:]
        return data

    def close(self) -> None:
        self._raw.close()


def test_corrupted_upload_is_detected_and_not_left_behind(store: ObjectStore, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key = source_key(CASE, "doc4", "pdf")
    src = tmp_path / "scan.pdf"
    src.write_bytes(PDFISH)
    store.put_file(key, src, metadata={}, content_type="application/pdf")  # a good earlier version

    backend = __import__(type(store).__module__, fromlist=["open_source"])
    monkeypatch.setattr(backend, "open_source", lambda p: _ChangingFile(objectstore.open_source(p)))
    src.write_bytes(PDFISH[:-1] + b"!")
    with pytest.raises(StorageError, match="verification|corrupted|expected sha256"):
        store.put_file(key, src, metadata={}, content_type="application/pdf")
    # The earlier good object is still the one served.
    assert store.get_bytes(key) == PDFISH
    assert store.stat(key).sha256 == hashlib.sha256(PDFISH).hexdigest()


def test_wrong_expected_sha256_is_refused(store: ObjectStore) -> None:
    key = ocr_key(CASE, "doc5")
    with pytest.raises(StorageError):
        store.put_bytes(key, b"abc", metadata={"sha256": "0" * 64}, content_type="application/json")
    assert not store.exists(key)


def test_local_list_skips_interrupted_temp_files(local_store) -> None:
    key = ocr_key(CASE, "doc6")
    local_store.put_bytes(key, b"ok", metadata={}, content_type="application/json")
    folder = local_store.root / Path(key).parent
    (folder / ".ocr.json.abc.tmp").write_bytes(b"half")
    assert list(local_store.list("cases/")) == [key]


# ------------------------------------------------------------------------------ S3 specifics
def test_s3_bucket_has_versioning(s3_store) -> None:
    key = manifest_key(CASE)
    s3_store.put_bytes(key, b"1", metadata={}, content_type="application/json")
    s3_store.put_bytes(key, b"2", metadata={}, content_type="application/json")
    assert s3_store.versioning_enabled()
    assert len(s3_store.versions(key)) == 2


def test_s3_many_workers_starting_on_a_new_bucket_all_get_it(s3_server) -> None:
    """Twelve stores (as twelve workers would) open one new bucket at the same instant, five times.

    While one creates the bucket, SeaweedFS answers the others' creation or versioning call with
    NoSuchBucket; a worker must wait for the bucket, not fail the operator's scan.
    """
    import secrets
    import threading

    from storage.s3 import S3Store

    failures = []
    for _ in range(5):
        bucket = f"t-race-{secrets.token_hex(4)}"
        stores = [S3Store(endpoint=s3_server.endpoint, access_key=s3_server.access_key,
                          secret_key=s3_server.secret_key, bucket=bucket) for _ in range(12)]
        barrier = threading.Barrier(len(stores))

        def start(store: S3Store) -> None:
            barrier.wait()
            try:
                store.ensure_bucket()
            except StorageError as exc:
                failures.append(str(exc))

        threads = [threading.Thread(target=start, args=(s,)) for s in stores]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert stores[0].versioning_enabled()
    assert failures == []


def test_s3_bucket_being_created_elsewhere_is_waited_for(monkeypatch) -> None:
    """The answers CI once got from SeaweedFS while another worker was creating the bucket
    (NoSuchBucket to a creation and to a versioning call) are waited out; a real refusal is not."""
    from minio.error import S3Error

    from storage import s3

    monkeypatch.setattr(s3, "BUCKET_RETRY_S", 0.001)

    class Server:
        def __init__(self, answers: list[str | None]) -> None:
            self.answers, self.calls = answers, []

        def _answer(self, call: str):
            self.calls.append(call)
            code = self.answers.pop(0) if self.answers else None
            if code:
                raise S3Error(None, code, "from the test", "t-b", "r", "h", bucket_name="t-b")
            return False if call == "exists" else None

        def bucket_exists(self, **_):
            return self._answer("exists")

        def make_bucket(self, **_):
            return self._answer("make")

        def set_bucket_versioning(self, **_):
            return self._answer("versioning")

    store = s3.S3Store(endpoint="127.0.0.1:9", access_key="a", secret_key="b", bucket="t-b")
    store._client = Server([None, "NoSuchBucket", None, "BucketAlreadyOwnedByYou", "NoSuchBucket", None, None, None])
    store.ensure_bucket()
    assert store._client.calls == ["exists", "make", "exists", "make", "versioning", "exists", "make", "versioning"]
    store.ensure_bucket()  # ready: no more calls
    assert len(store._client.calls) == 8

    refused = s3.S3Store(endpoint="127.0.0.1:9", access_key="a", secret_key="b", bucket="t-b")
    refused._client = Server([None, "AccessDenied"])
    with pytest.raises(StorageError, match="bucket creation.*AccessDenied"):
        refused.ensure_bucket()
    assert refused._client.calls == ["exists", "make"]

    never = s3.S3Store(endpoint="127.0.0.1:9", access_key="a", secret_key="b", bucket="t-b")
    never._client = Server([None, None, "NoSuchBucket"] * s3.BUCKET_ATTEMPTS)
    with pytest.raises(StorageError, match="enabling versioning.*NoSuchBucket"):
        never.ensure_bucket()
    assert len(never._client.calls) == 3 * s3.BUCKET_ATTEMPTS


def test_s3_wrong_credentials_is_a_permanent_error(s3_server) -> None:
    from storage.s3 import S3Store

    bad = S3Store(endpoint=s3_server.endpoint, access_key=s3_server.access_key, secret_key="wrong",
                  bucket="t-badcreds")
    with pytest.raises(StorageError) as info:
        bad.exists("a/b")
    assert not isinstance(info.value, StorageUnavailable)


def test_s3_server_down_is_unavailable_fast_then_recovers(s3_server, s3_store) -> None:
    key = ocr_key(CASE, "doc7")
    s3_store.put_bytes(key, b"before", metadata={}, content_type="application/json")
    s3_server.stop()
    try:
        for call in (lambda: s3_store.get_bytes(key),
                     lambda: s3_store.put_bytes(key, b"during", metadata={}, content_type="application/json"),
                     lambda: list(s3_store.list("cases/"))):
            with pytest.raises(StorageUnavailable) as info:
                call()
            assert info.value.retryable
            assert "kho lưu trữ" in info.value.user_message()
    finally:
        s3_server.start()
    assert s3_store.get_bytes(key) == b"before"
    s3_store.put_bytes(key, b"after", metadata={}, content_type="application/json")
    assert s3_store.get_bytes(key) == b"after"
