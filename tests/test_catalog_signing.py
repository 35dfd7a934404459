"""Result codes, signatures and extracted fields in the catalog, on SQLite and PostgreSQL (migration 0004)."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from models import DocumentRecord, PageText, StorageError
from storage.catalog import Catalog
from storage.catalog_schema import MIGRATIONS

CASE = "000.00.14.H56-200203-0118"
OTHER = "000.17.22.H56-200203-0002"


def _doc(case: str, doc: str, **extra) -> DocumentRecord:
    return DocumentRecord(case_id=case, document_id=doc, source_sha256=doc.ljust(64, "0"), source_name=f"{doc}.pdf",
                          created_at="2020-02-03T08:00:00+00:00", page_count=1,
                          keys={"searchable_pdf": f"cases/{case}/documents/{doc}/searchable.pdf"},
                          pages=[PageText(number=1, text="Quyết định số 264/QĐ-UBND", confidence=90.0)], **extra)


def _upgrade(catalog: Catalog, revision: str) -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with catalog.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def test_fields_and_result_codes_are_findable(catalog_url):
    catalog = Catalog(catalog_url)
    # An existing catalog at 0001 with a document: the upgrade keeps its pages (no copy-and-drop of tables).
    _upgrade(catalog, "0001")
    with catalog.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO cases (case_id, first_seen_at) VALUES (:c, CURRENT_TIMESTAMP)"), {"c": CASE})
    old = _doc(CASE, "aaaaaaaaaa0000000000")
    old_values = {k: v for k, v in old.to_manifest().items() if k not in ("result_code", "signatures", "extracted")}
    with catalog.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO documents (case_id, document_id, source_sha256, source_name, created_at, "
                             "page_count, keys) VALUES (:case_id, :document_id, :source_sha256, :source_name, "
                             ":created_at, :page_count, :keys)"),
                     {**old_values, "keys": '{"searchable_pdf": "x"}'})
        pk = conn.execute(sa.text("SELECT id FROM documents")).scalar_one()
        conn.execute(sa.text("INSERT INTO pages (doc_pk, number, text) VALUES (:d, 1, 'trang cũ')"), {"d": pk})
    catalog.migrate()
    with catalog.engine.begin() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pages")).scalar_one() == 1
        columns = {c["name"] for c in sa.inspect(conn).get_columns("documents")}
        assert {"result_code", "signatures"} <= columns and sa.inspect(conn).has_table("document_fields")
    assert catalog.unsigned_documents() == [(CASE, "aaaaaaaaaa0000000000")]

    cid = {"name": "citizen_id", "value": "008189004512", "page": 1, "box": [10, 20, 300, 40], "confidence": 0.93}
    num = {"name": "document_number", "value": "264/QĐ-UBND", "page": 1, "box": None, "confidence": 0.9}
    signed = _doc(CASE, "bbbbbbbbbb0000000000", result_code=f"{CASE}-KQBBBBBBBBBB", extracted=[cid, num],
                  signatures=[{"role": "agency", "signer": "UBND", "signed_at": "2026-11-29T21:00:00+07:00",
                               "level": "PAdES-B-LT", "test": False}])
    catalog.record_document(signed)
    catalog.record_document(_doc(OTHER, "cccccccccc0000000000", result_code=f"{OTHER}-KQCCCCCCCCCC",
                                 extracted=[{**cid, "page": 2}]))
    catalog.record_document(signed)  # recording twice leaves one set of fields

    found = catalog.find_by_identifier("008189004512")
    assert sorted((r.case_id, m) for r, m in found) == [(CASE, "citizen_id"), (OTHER, "citizen_id")]
    assert [r.case_id for r, _ in catalog.find_by_identifier("008189004512", case_prefix="000.17")] == [OTHER]
    [(rec, matched)] = catalog.find_by_identifier(f"{CASE}-kqbbbbbbbbbb")
    assert matched == "result_code" and rec.document_id == "bbbbbbbbbb0000000000"
    assert rec.extracted == [cid, num] and rec.signatures[0]["level"] == "PAdES-B-LT"
    assert [r.document_id for r, _ in catalog.find_by_identifier("264/QĐ-UBND")] == ["bbbbbbbbbb0000000000"]
    assert catalog.find_by_identifier("008189004513") == []
    assert sorted(catalog.unsigned_documents()) == [(CASE, "aaaaaaaaaa0000000000"), (OTHER, "cccccccccc0000000000")]
    with pytest.raises(StorageError):  # a result code is unique
        catalog.record_document(_doc(OTHER, "dddddddddd0000000000", result_code=f"{CASE}-KQBBBBBBBBBB"))
    catalog.close()
