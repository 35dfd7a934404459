"""Search filters live on the page row (migration 0006): every path that writes pages fills them.

The unit, received date and kind a search filters on are copies on ``pages`` (search tests them on
the row it walks). A page written without them would silently vanish from a handler's filtered
search; these tests write pages through every path (store, signing, repair, repair of a lost row,
rebuild from the manifests, the migration of an existing catalog) on SQLite and PostgreSQL and check
both the row and the filtered search.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa

from models import DocumentRecord, PageText
import storage.catalog_search as catalog_module
from storage.archive import Archive
from storage.catalog import Catalog
from storage.local import LocalStore
from tests.test_archive import _ingest
from tests.test_catalog_signing import _upgrade

CASE = "000.00.14.H56-200203-0118"
AGENCY, RECEIVED = "000.00.14.H56", "2020-02-03"


def _page_rows(catalog: Catalog) -> set[tuple]:
    with catalog.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT p.case_id, p.agency, p.received_on, p.kind FROM pages p")).all()
    return {(c, a, str(r) if r is not None else None, k) for c, a, r, k in rows}


def _found_only_with_its_own_filters(catalog: Catalog, word: str, kind: str) -> None:
    day = dt.date.fromisoformat(RECEIVED)
    own = catalog.search(word, units=[AGENCY], since=day, until=day, kind=kind)
    assert {h.case_id for h in own} == {CASE}, "the page is found with its own unit, date and kind"
    assert catalog.search(word, units=["000.17.22.H56"]) == []
    assert catalog.search(word, since=day + dt.timedelta(days=1)) == []
    assert catalog.search(word, until=day - dt.timedelta(days=1)) == []
    assert catalog.search(word, kind="another kind") == []
    assert {h.case_id for h in catalog.search(f"{AGENCY} {word}")} == {CASE}, "a case ID typed with the words"


def test_every_write_path_fills_the_page_filters(catalog_url: str, tmp_path: Path) -> None:
    catalog = Catalog(catalog_url)
    catalog.migrate()
    archive = Archive(LocalStore(tmp_path / "store"), catalog)
    expected = {(CASE, AGENCY, RECEIVED, "application")}
    try:
        # Stored by the intake flow.
        rec = _ingest(archive, tmp_path, CASE, "d-one", ["Quyết định giao đất", "Điều 2 thi hành"], b"original")
        assert _page_rows(catalog) == expected
        _found_only_with_its_own_filters(catalog, "giao dat", "application")

        # Signed later (flows/signing.py records the same document again, without page texts).
        signed = DocumentRecord(**{**rec.to_manifest(), "signatures": [{"role": "agency", "signer": "UBND"}]})
        archive.record(signed)
        assert _page_rows(catalog) == expected
        _found_only_with_its_own_filters(catalog, "thi hanh", "application")

        # Repaired: the original replaced by its own pages of a stack.
        fixed_source = tmp_path / "own-pages.tif"
        fixed_source.write_bytes(b"own pages")
        archive.replace_original(rec, source_path=fixed_source, stack_sha256="f" * 64, stack_pages=[1, 2])
        assert _page_rows(catalog) == expected
        _found_only_with_its_own_filters(catalog, "giao dat", "application")

        # A lost catalog row put back from the manifest and ocr.json (sohoa repair).
        with catalog.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM pages"))
            if not catalog.is_postgres:
                conn.execute(sa.text("DELETE FROM pages_fts"))
            conn.execute(sa.text("DELETE FROM documents"))
        assert archive.recatalog(CASE, "d-one") is not None
        assert _page_rows(catalog) == expected
        _found_only_with_its_own_filters(catalog, "giao dat", "application")

        # The whole catalog rebuilt from the object store (sohoa reindex).
        assert archive.reindex() == 1
        assert _page_rows(catalog) == expected
        _found_only_with_its_own_filters(catalog, "giao dat", "application")

        # Re-recorded with another kind (a corrected record): the page rows follow.
        catalog.record_document(DocumentRecord(**{**archive.manifest_records(CASE)[0].to_manifest(),
                                                  "kind": "Quyết định"}, pages=rec.pages))
        assert _page_rows(catalog) == {(CASE, AGENCY, RECEIVED, "Quyết định")}
        _found_only_with_its_own_filters(catalog, "giao dat", "Quyết định")
    finally:
        catalog.close()


def test_migration_fills_the_page_filters_of_an_existing_catalog(catalog_url: str) -> None:
    catalog = Catalog(catalog_url)
    try:
        _upgrade(catalog, "0005_scan_jobs")
        with catalog.engine.begin() as conn:
            for case, agency, received in ((CASE, AGENCY, RECEIVED), ("TAM-0001", None, None)):
                conn.execute(sa.text("INSERT INTO cases (case_id, agency, received_on, first_seen_at) "
                                     "VALUES (:c, :a, :r, CURRENT_TIMESTAMP)"),
                             {"c": case, "a": agency, "r": dt.date.fromisoformat(received) if received else None})
                pk = conn.execute(sa.text(
                    "INSERT INTO documents (case_id, document_id, source_sha256, source_name, kind, created_at, "
                    "page_count, keys) VALUES (:c, :d, :s, 'scan.pdf', 'application', CURRENT_TIMESTAMP, 1, '{}') "
                    "RETURNING id"), {"c": case, "d": f"doc-{case}", "s": "0" * 64}).scalar_one()
                page = conn.execute(sa.text("INSERT INTO pages (doc_pk, number, text) "
                                            "VALUES (:d, 1, 'Quyết định giao đất') RETURNING id"),
                                    {"d": pk}).scalar_one()
                if not catalog.is_postgres:
                    conn.execute(sa.text("INSERT INTO pages_fts (rowid, folded, exact) "
                                         "VALUES (:i, 'quyet dinh giao dat', 'quyết định giao đất')"), {"i": page})
        catalog.migrate()
        assert _page_rows(catalog) == {(CASE, AGENCY, RECEIVED, "application"),
                                       ("TAM-0001", None, None, "application")}
        _found_only_with_its_own_filters(catalog, "giao dat", "application")
        assert {h.case_id for h in catalog.search("giao dat")} == {CASE, "TAM-0001"}
    finally:
        catalog.close()


def test_the_window_is_the_newest_matching_pages_whatever_the_way(catalog_url: str, monkeypatch) -> None:
    """With a window of 4, PostgreSQL's sample walk (8 pages), its walk on, and its GIN lookups each
    give exactly the newest matching pages (received date, then catalogued; SQLite: catalogued)."""
    catalog = Catalog(catalog_url)
    catalog.migrate()
    units = ["000.00.14.H56", "000.17.22.H56"]
    days = list(range(1, 61))
    order = days[::2] + days[1::2]  # catalogued out of received order (a backfill of the odd days)
    pages = []
    try:
        for n, day in enumerate(order):
            received = dt.date(2021, 1, 1) + dt.timedelta(days=day)
            case = f"{units[day % 2]}-{received:%y%m%d}-0001"
            words = ["chung"] + (["vua"] if day % 5 == 0 else []) + (["hiem"] if day in (3, 58) else [])
            catalog.record_document(DocumentRecord(
                case_id=case, document_id=f"d{day:02d}", source_sha256=f"{day:064d}", source_name="scan.pdf",
                created_at="2021-01-01T00:00:00+00:00", page_count=1, kind="Biên bản" if day % 3 else "Đơn",
                keys={}, pages=[PageText(number=1, text=" ".join(words) + f" trang {day}", confidence=90.0)]))
            pages.append((n, received, units[day % 2], "Biên bản" if day % 3 else "Đơn", set(words), f"d{day:02d}"))
        catalog.search_window = 4
        for budget in (catalog_module.SCAN_BUDGET, 5):  # walk on, or ask GIN from a received date on
            monkeypatch.setattr(catalog_module, "SCAN_BUDGET", budget)
            _check_windows(catalog, pages, units)
    finally:
        catalog.close()


def _check_windows(catalog: Catalog, pages: list[tuple], units: list[str]) -> None:
    since, until = dt.date(2021, 1, 20), dt.date(2021, 2, 10)
    for word in ("chung", "vua", "hiem", "chung vua"):
        for filters in ({}, {"units": units[:1]}, {"units": units}, {"since": since, "until": until},
                        {"kind": "Đơn"}, {"units": units[1:], "since": since}):
            match = [p for p in pages if set(word.split()) <= p[4]
                     and ("units" not in filters or p[2] in filters["units"])
                     and ("since" not in filters or p[1] >= filters["since"])
                     and ("until" not in filters or p[1] <= filters["until"])
                     and ("kind" not in filters or p[3] == filters["kind"])]
            newest = sorted(match, key=(lambda p: (p[1], p[0])) if catalog.is_postgres else (lambda p: p[0]),
                            reverse=True)[:4]
            hits = catalog.search(word, limit=10, **filters)
            assert {h.document_id for h in hits} == {p[5] for p in newest}, (word, filters)
            assert hits.matched == len(newest) and hits.capped == (len(newest) >= 4)
