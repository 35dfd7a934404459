"""The archive service: originals, derived files, manifests, reindex and fixity, on both stores."""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest

from models import DocumentRecord, StorageError
from storage.archive import Archive
from storage.catalog import Catalog
from storage.config import Settings, open_catalog, open_store
from storage.local import LocalStore
from storage.manifest import pages_from_ocr_json
from storage.objectstore import manifest_key, ocr_key, searchable_key, source_key
from tests.servers import fetch

CASE = "000.00.14.H56-200203-0118"
OTHER = "000.00.14.H56-200203-0119"


def _ocr_json(case_id: str, doc_id: str, texts: list[str]) -> bytes:
    pages = []
    for n, text in enumerate(texts, 1):
        words = [[w, 10 * i + 1, 10, 8, 12, 90.0 - i, 1, 1, 1] for i, w in enumerate(text.split())]
        pages.append({"number": n, "ocr": {"width": 100, "height": 100, "dpi": 300, "rotation": 0,
                                           "words": words}, "text": text})
    pages.append({"number": len(texts) + 1, "ocr": None, "text": ""})  # a blank back page
    return json.dumps({"document_id": doc_id, "case_id": case_id, "pages": pages}, ensure_ascii=False).encode()


@pytest.fixture()
def archive(store, tmp_path: Path):
    catalog = Catalog(f"sqlite:///{tmp_path / 'cat.sqlite3'}")
    catalog.migrate()
    yield Archive(store, catalog)
    catalog.close()


def _ingest(archive: Archive, tmp_path: Path, case_id: str, doc_id: str, texts: list[str],
            source: bytes) -> DocumentRecord:
    """What the intake flow does: original first, then the PDF and OCR words, then the record."""
    src = tmp_path / f"{doc_id}.tif"
    src.write_bytes(source)
    original = archive.store_original(case_id=case_id, document_id=doc_id, source_path=src,
                                      source_name="Đơn đề nghị.tif", ext="tif", operator="thu.nguyen")
    pdf = tmp_path / f"{doc_id}.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + source[::-1] + b"\n%%EOF")
    searchable = archive.store_derived(case_id=case_id, document_id=doc_id, role="searchable_pdf", path=pdf,
                                       content_type="application/pdf", source_sha256=original.sha256)
    rec = DocumentRecord(case_id=case_id, document_id=doc_id, source_sha256=original.sha256,
                         source_name="Đơn đề nghị.tif", created_at="2020-02-03T08:00:00+00:00",
                         page_count=len(texts) + 1, kind="application", operator="thu.nguyen",
                         keys={"source": original.key, "searchable_pdf": searchable.key})
    return archive.record(rec, ocr_json=_ocr_json(case_id, doc_id, texts))


def test_pages_from_ocr_json() -> None:
    pages = pages_from_ocr_json(_ocr_json(CASE, "d", ["Quyết định số 1", "Điều 2"]))
    assert [(p.number, p.text) for p in pages] == [(1, "Quyết định số 1"), (2, "Điều 2"), (3, "")]
    assert pages[0].confidence == pytest.approx((90 + 89 + 88 + 87) / 4)
    assert pages[2].confidence is None


def test_store_original_then_derived(archive: Archive, tmp_path: Path) -> None:
    src = tmp_path / "scan.tif"
    src.write_bytes(b"II*\x00" + bytes(range(256)) * 100)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    first = archive.store_original(case_id=CASE, document_id="doc1", source_path=src, source_name="hồ sơ.tif",
                                   ext="TIF")
    assert first.key == source_key(CASE, "doc1", "tif") and first.sha256 == sha
    stat = archive.store.stat(first.key)
    assert stat.metadata["case-id"] == CASE and stat.metadata["source-name"] == "hồ sơ.tif"
    assert stat.content_type == "image/tiff"
    # The same file again: nothing uploaded, same object.
    assert archive.store_original(case_id=CASE, document_id="doc1", source_path=src, source_name="hồ sơ.tif",
                                  ext="tif").sha256 == sha
    # A different file under the same key is refused, the original stays.
    other = tmp_path / "other.tif"
    other.write_bytes(b"II*\x00different")
    with pytest.raises(StorageError, match="never overwritten"):
        archive.store_original(case_id=CASE, document_id="doc1", source_path=other, source_name="x.tif", ext="tif")
    assert archive.store.stat(first.key).sha256 == sha

    pdf = tmp_path / "out.pdf"
    pdf.write_bytes(b"%PDF-1.7 searchable")
    derived = archive.store_derived(case_id=CASE, document_id="doc1", role="searchable_pdf", path=pdf,
                                    content_type="application/pdf", source_sha256=sha)
    assert derived.key == searchable_key(CASE, "doc1")
    assert archive.store.stat(derived.key).metadata["source-sha256"] == sha
    with pytest.raises(ValueError):
        archive.store_derived(case_id=CASE, document_id="doc1", role="thumbnail", path=pdf,
                              content_type="image/png", source_sha256=sha)


def test_manifest_keeps_every_document_and_is_idempotent(archive: Archive, tmp_path: Path) -> None:
    a = _ingest(archive, tmp_path, CASE, "doc-a", ["Quyết định số 264"], b"A" * 5000)
    _ingest(archive, tmp_path, CASE, "doc-b", ["Giấy tiếp nhận hồ sơ"], b"B" * 5000)
    _ingest(archive, tmp_path, CASE, "doc-a", ["Quyết định số 264"], b"A" * 5000)  # again

    manifest = json.loads(archive.store.get_bytes(manifest_key(CASE)))
    assert manifest["case_id"] == CASE
    assert [d["document_id"] for d in manifest["documents"]] == ["doc-a", "doc-b"]
    entry = manifest["documents"][0]
    assert entry["keys"] == {"source": source_key(CASE, "doc-a", "tif"),
                             "searchable_pdf": searchable_key(CASE, "doc-a"), "ocr_json": ocr_key(CASE, "doc-a")}
    assert entry["checksums"]["source"] == a.source_sha256 == hashlib.sha256(b"A" * 5000).hexdigest()
    assert entry["source_name"] == "Đơn đề nghị.tif"
    assert "pages" not in entry
    assert [d.document_id for d in archive.catalog.documents_for_case(CASE)] == ["doc-a", "doc-b"]
    assert archive.catalog.page_count_total() == 4


def test_is_stored_needs_every_object(archive: Archive, tmp_path: Path) -> None:
    rec = _ingest(archive, tmp_path, CASE, "doc-c", ["Kế hoạch"], b"C" * 3000)
    assert archive.is_stored(CASE, rec.source_sha256).document_id == "doc-c"
    assert archive.is_stored(OTHER, rec.source_sha256) is None
    assert archive.is_stored(CASE, "0" * 64) is None
    archive.store.delete(rec.keys["searchable_pdf"])  # an interrupted run: the PDF never arrived
    assert archive.is_stored(CASE, rec.source_sha256) is None


def test_reindex_rebuilds_the_same_search(archive: Archive, tmp_path: Path) -> None:
    _ingest(archive, tmp_path, CASE, "doc-d", ["QUYẾT ĐỊNH về việc ban hành", "Điều 1. Quyết định này"], b"D" * 999)
    _ingest(archive, tmp_path, OTHER, "doc-e", ["Ban sao quyet dinh khong dau"], b"E" * 999)
    before = [(h.case_id, h.document_id, h.page) for h in archive.catalog.search("quyet dinh")]
    assert len(before) == 3
    total = archive.catalog.page_count_total()

    archive.catalog.drop_all()
    assert archive.reindex() == 2
    after = [(h.case_id, h.document_id, h.page) for h in archive.catalog.search("quyet dinh")]
    assert after == before
    assert archive.catalog.page_count_total() == total
    doc = archive.catalog.get_document("doc-d")
    assert doc.pages[1].text == "Điều 1. Quyết định này" and doc.pages[1].confidence is not None


def test_verify_finds_tampered_and_missing_objects(archive: Archive, tmp_path: Path) -> None:
    rec = _ingest(archive, tmp_path, CASE, "doc-f", ["Kế hoạch"], b"F" * 4000)
    _ingest(archive, tmp_path, OTHER, "doc-g", ["Kế hoạch"], b"G" * 4000)
    assert archive.verify() == []

    pdf_key = rec.keys["searchable_pdf"]
    if isinstance(archive.store, LocalStore):  # someone edits the file behind the store's back
        (archive.store.root / pdf_key).write_bytes(b"%PDF-1.7 edited")
    else:  # or re-uploads it (the new object's own metadata is consistent with its bytes)
        archive.store.put_bytes(pdf_key, b"%PDF-1.7 edited", metadata={}, content_type="application/pdf")
    archive.store.delete(rec.keys["ocr_json"])

    problems = archive.verify(CASE)
    assert {(p.key, p.problem) for p in problems} == {(pdf_key, "checksum_mismatch"),
                                                      (rec.keys["ocr_json"], "missing")}
    tampered = next(p for p in problems if p.problem == "checksum_mismatch")
    assert tampered.actual == hashlib.sha256(b"%PDF-1.7 edited").hexdigest()
    assert "manifest recorded" in tampered.message()
    assert archive.verify(OTHER) == []
    assert len(archive.verify()) == 2


def test_link_gives_working_urls(archive: Archive, tmp_path: Path) -> None:
    rec = _ingest(archive, tmp_path, CASE, "doc-h", ["Kế hoạch"], b"H" * 2000)
    [(doc_id, url)] = archive.link(CASE, expires=dt.timedelta(minutes=5))
    assert doc_id == "doc-h"
    assert fetch(url) == archive.store.get_bytes(rec.keys["searchable_pdf"])
    assert archive.link(OTHER, expires=dt.timedelta(minutes=5)) == []


def test_settings_and_openers(tmp_path: Path) -> None:
    settings = Settings.from_env({"SOHOA_DATA_DIR": str(tmp_path / "data")})
    assert settings.s3_bucket == "sohoa" and not settings.s3_secure and settings.s3_endpoint is None
    assert settings.database_url == f"sqlite:///{tmp_path / 'data' / 'catalog.sqlite3'}"
    store = open_store(settings)
    assert isinstance(store, LocalStore) and store.root == tmp_path / "data" / "objects"
    catalog = open_catalog(settings)
    assert catalog.page_count_total() == 0
    catalog.close()
    s3 = Settings.from_env({"SOHOA_S3_ENDPOINT": "http://127.0.0.1:9000", "SOHOA_S3_ACCESS_KEY": "k",
                            "SOHOA_S3_SECRET_KEY": "very-secret", "SOHOA_S3_SECURE": "true", "SOHOA_S3_BUCKET": "hs"})
    assert s3.s3_secure and "very-secret" not in repr(s3)
    from storage.s3 import S3Store
    assert isinstance(open_store(s3), S3Store)


def test_archive_with_postgres_catalog(local_store, pg_url: str, tmp_path: Path) -> None:
    catalog = Catalog(pg_url)
    catalog.migrate()
    try:
        archive = Archive(local_store, catalog)
        _ingest(archive, tmp_path, CASE, "doc-p", ["Quyết định số 264/QĐ-UBND"], b"P" * 999)
        before = [(h.document_id, h.page) for h in catalog.search("QUYET DINH")]
        catalog.drop_all()
        assert archive.reindex() == 1
        assert [(h.document_id, h.page) for h in catalog.search("QUYET DINH")] == before == [("doc-p", 1)]
    finally:
        catalog.close()
