"""The catalog: the same tests on SQLite (FTS5) and PostgreSQL (tsvector + unaccent)."""
from __future__ import annotations

import datetime as dt

import pytest

from models import DocumentRecord, PageText
from storage.catalog import Catalog
from storage.textsearch import fold, make_snippet, split_case_id_words

CASE_A = "000.00.14.H56-200203-0118"
CASE_B = "000.00.14.H56-200204-0001"
CASE_C = "000.17.22.H56-200203-0002"


def _doc(case_id: str, doc_id: str, texts: list[str], *, created: str = "2020-02-03T08:00:00+00:00",
         sha: str | None = None, name: str = "scan.pdf") -> DocumentRecord:
    return DocumentRecord(
        case_id=case_id, document_id=doc_id, source_sha256=sha or doc_id.ljust(64, "0"), source_name=name,
        created_at=created, page_count=len(texts), kind="application", operator="thu.nguyen",
        keys={"source": f"cases/{case_id}/documents/{doc_id}/source.pdf"}, mean_confidence=91.5,
        pages=[PageText(number=i + 1, text=t, confidence=90.0) for i, t in enumerate(texts)])


@pytest.fixture()
def catalog(catalog_url: str):
    cat = Catalog(catalog_url)
    cat.migrate()
    yield cat
    cat.close()


@pytest.fixture()
def filled(catalog: Catalog) -> Catalog:
    catalog.record_document(_doc(CASE_A, "d-decision", [
        "UỶ BAN NHÂN DÂN TỈNH TUYÊN QUANG\nQUYẾT ĐỊNH về việc ban hành kế hoạch",
        "Điều 1. Ban hành kèm theo Quyết định này Kế hoạch triển khai Nghị định số 61/2018/NĐ-CP"]))
    catalog.record_document(_doc(CASE_B, "d-receipt", [
        "Giấy tiếp nhận hồ sơ và hẹn trả kết quả. Mã hồ sơ 000.00.14.H56-200204-0001"],
        created="2020-02-04T09:00:00+00:00"))
    catalog.record_document(_doc(CASE_C, "d-plain", [
        "Ban sao quyet dinh khong dau, danh may tren may cu"], created="2021-05-01T00:00:00Z"))
    return catalog


def test_fold() -> None:
    assert fold("Quyết Định") == "quyet dinh"
    assert fold("QUYẾT ĐỊNH") == "quyet dinh"
    assert fold("đường Đá") == "duong da"
    # NFD input (another spelling of the same letters) folds the same.
    import unicodedata
    assert fold(unicodedata.normalize("NFD", "Nghị định")) == "nghi dinh"


def test_migrate_is_idempotent(catalog: Catalog) -> None:
    catalog.migrate()
    assert catalog.page_count_total() == 0


def test_record_is_idempotent(catalog: Catalog) -> None:
    rec = _doc(CASE_A, "d1", ["trang một", "trang hai"])
    catalog.record_document(rec)
    catalog.record_document(rec)
    docs = catalog.documents_for_case(CASE_A)
    assert [d.document_id for d in docs] == ["d1"]
    assert catalog.page_count_total() == 2
    assert len(catalog.search("trang")) == 2

    # Recording again with changed pages replaces them, still one document.
    rec.pages = [PageText(number=1, text="trang mới", confidence=80.0)]
    rec.page_count = 1
    catalog.record_document(rec)
    assert catalog.page_count_total() == 1
    assert [h.page for h in catalog.search("trang")] == [1]
    assert catalog.search("hai") == []


def test_documents_roundtrip(filled: Catalog) -> None:
    [doc] = filled.documents_for_case(CASE_A)
    assert doc.source_name == "scan.pdf" and doc.kind == "application" and doc.operator == "thu.nguyen"
    assert doc.page_count == 2 and doc.mean_confidence == 91.5
    assert doc.keys["source"].endswith("/source.pdf")
    assert dt.datetime.fromisoformat(doc.created_at) == dt.datetime(2020, 2, 3, 8, tzinfo=dt.UTC)
    full = filled.get_document("d-decision")
    assert full is not None and [p.number for p in full.pages] == [1, 2]
    assert "QUYẾT ĐỊNH" in full.pages[0].text
    assert filled.get_document("nope") is None
    assert filled.find_by_sha256(CASE_A, "d-decision".ljust(64, "0")).document_id == "d-decision"
    assert filled.find_by_sha256(CASE_B, "d-decision".ljust(64, "0")) is None
    assert filled.page_count_total() == 4


@pytest.mark.parametrize("query", ["quyet dinh", "Quyết Định", "QUYẾT ĐỊNH", "quyết định", "QUYET DINH"])
def test_search_ignores_diacritics_and_case(filled: Catalog, query: str) -> None:
    hits = filled.search(query)
    found = {(h.document_id, h.page) for h in hits}
    assert found == {("d-decision", 1), ("d-decision", 2), ("d-plain", 1)}
    assert all(h.snippet for h in hits)


def test_search_folds_d_with_stroke(filled: Catalog) -> None:
    assert {h.document_id for h in filled.search("nghi dinh")} == {"d-decision"}
    assert {h.document_id for h in filled.search("dieu 1")} == {"d-decision"}
    assert {h.document_id for h in filled.search("ĐIỀU")} == {"d-decision"}


def test_search_needs_every_word(filled: Catalog) -> None:
    assert [h.document_id for h in filled.search("hồ sơ hẹn trả")] == ["d-receipt"]
    assert filled.search("quyết định xyzzy") == []
    assert filled.search("   ...  ") == []


def test_exact_diacritics_rank_higher(filled: Catalog) -> None:
    hits = filled.search("quyết định")
    assert hits[-1].document_id == "d-plain", "the page without diacritics ranks last when they were typed"
    hits = filled.search("quyet dinh")
    assert hits[0].document_id == "d-plain", "typed without diacritics: the plain page matches exactly"
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:]))


def test_snippet_shows_original_text_highlighted(filled: Catalog) -> None:
    [hit] = filled.search("tiep nhan")
    assert hit.case_id == CASE_B and hit.page == 1 and hit.source_name == "scan.pdf"
    assert "«tiếp» «nhận»" in hit.snippet


def test_case_prefix_and_received_date_filters(filled: Catalog) -> None:
    assert {h.case_id for h in filled.search("quyet dinh", case_prefix="000.00.14.H56")} == {CASE_A}
    assert {h.case_id for h in filled.search("quyet dinh", case_prefix="000.17.")} == {CASE_C}
    assert filled.search("quyet dinh", case_prefix="000.00.14.H56-2002%") == []  # % is not a wildcard
    # since/until are the received date written in the case ID (yymmdd), not the time of storing:
    # CASE_C was received 2020-02-03 and its document stored in 2021.
    assert {h.case_id for h in filled.search("quyet dinh", since=dt.date(2021, 1, 1))} == set()
    assert {h.case_id for h in filled.search("ho so", since=dt.date(2020, 2, 4))} == {CASE_B}
    assert {h.case_id for h in filled.search("quyet dinh", until=dt.date(2020, 2, 3))} == {CASE_A, CASE_C}
    assert filled.search("ho so", until=dt.date(2020, 2, 3)) == []
    assert len(filled.search("quyet dinh", limit=1)) == 1


def test_search_finds_a_case_id_typed_into_the_box(filled: Catalog) -> None:
    assert [h.document_id for h in filled.search("000.00.14.H56-200204-0001")] == ["d-receipt"]


def test_drop_all_then_migrate_gives_an_empty_catalog(filled: Catalog) -> None:
    filled.drop_all()
    filled.migrate()
    assert filled.page_count_total() == 0
    assert filled.search("quyet dinh") == []


def test_make_snippet_marks_words() -> None:
    text = "Căn cứ Quyết định số 985/QĐ-TTg ngày 08/8/2018 của Thủ tướng"
    assert make_snippet(text, ["quyet", "dinh"]) == "Căn cứ «Quyết» «định» số 985/QĐ-TTg ngày 08/8/2018 của Thủ tướng"


# ---------------------------------------------------------------------------- issue 9 item 6, issue 11
def test_common_words_are_ranked_not_all_zero(catalog: Catalog) -> None:
    """Words on every page (BM25's idf went to 1e-6 on SQLite: every score printed 0.000)."""
    texts = {
        "d-many": "Quyết định. Căn cứ quyết định số 12; quyết định này có hiệu lực; quyết định kèm theo.",
        "d-two": "Quyết định về việc cấp giấy phép. Nơi nhận: như quyết định trên.",
        "d-one": "Quyết định. " + " ".join(["Giấy chứng nhận quyền sử dụng đất thửa đất số 5."] * 6),
    }
    for i, (doc, text) in enumerate(texts.items()):
        catalog.record_document(_doc(f"000.00.14.H56-20020{i + 3}-0001", doc, [text]))
    hits = catalog.search("quyet dinh")
    assert [h.document_id for h in hits] == ["d-many", "d-two", "d-one"], "more and denser matches rank first"
    assert hits[0].score == 1.0, "scores are relative to the best page of the query"
    assert 1.0 > hits[1].score > hits[2].score > 0.0
    assert len({f"{h.score:.3f}" for h in hits}) == 3, "printed scores tell the pages apart"


def test_page_numbers_are_those_of_the_searchable_pdf(catalog: Catalog) -> None:
    """A page catalogued as page 1 of the PDF and page 3 of the scanned stack answers page 1."""
    rec = _doc(CASE_A, "d-split", ["Tờ khai đăng ký hộ kinh doanh", "Bản sao căn cước công dân"])
    rec.pages[0].source_page, rec.pages[1].source_page = 3, 5
    catalog.record_document(rec)
    [hit] = catalog.search("dang ky ho kinh doanh")
    assert (hit.page, hit.source_page) == (1, 3)
    [hit] = catalog.search("can cuoc")
    assert (hit.page, hit.source_page) == (2, 5)
    full = catalog.get_document("d-split")
    assert [(p.number, p.source_page) for p in full.pages] == [(1, 3), (2, 5)]


def test_search_filters_units_kind_and_pages(filled: Catalog) -> None:
    filled.record_document(_doc(CASE_C, "d-other-kind", ["Quyết định giao đất"]))
    assert {h.case_id for h in filled.search("quyet dinh", units=["000.00.14.H56"])} == {CASE_A}
    assert {h.case_id for h in filled.search("quyet dinh", units=["000.17.22.H56", "000.00.14.H56"])} == {CASE_A, CASE_C}
    assert filled.search("quyet dinh", units=[]) == [], "no unit sees nothing"
    assert filled.search("quyet dinh", units=["000.00.14"]) == [], "a unit is a whole agency code, not a prefix"
    # Provisional case IDs (no agency) are only seen without a unit filter.
    filled.record_document(_doc("TAM-0001", "d-provisional", ["Quyết định tạm"]))
    assert "TAM-0001" in {h.case_id for h in filled.search("quyet dinh")}
    assert "TAM-0001" not in {h.case_id for h in filled.search("quyet dinh", units=["000.00.14.H56"])}
    kinds = {"d-decision": "Quyết định", "d-other-kind": "Quyết định"}
    for doc in filled.documents_for_case(CASE_C) + filled.documents_for_case(CASE_A):
        rec = filled.get_document(doc.document_id)
        rec.kind = kinds.get(doc.document_id, "Đơn đề nghị")
        filled.record_document(rec)
    assert {h.document_id for h in filled.search("quyet dinh", kind="Quyết định")} == {"d-decision", "d-other-kind"}
    assert set(filled.kinds(units=["000.17.22.H56"])) == {"Quyết định", "Đơn đề nghị"}
    assert set(filled.kinds(units=["000.00.14.H56"])) == {"Quyết định", "application"}
    everything = filled.search("quyet dinh", limit=50)
    paged = filled.search("quyet dinh", limit=2) + filled.search("quyet dinh", limit=2, offset=2) + \
        filled.search("quyet dinh", limit=2, offset=4)
    assert [(h.document_id, h.page) for h in paged] == [(h.document_id, h.page) for h in everything]
    assert [h.score for h in paged] == [h.score for h in everything], "page 2 is scored against the same best"


def test_case_id_words_in_the_search_box(filled: Catalog) -> None:
    assert split_case_id_words("000.00.14.h56 quyết định") == ("quyết định", ["000.00.14.H56"])
    assert split_case_id_words("61/2018/NĐ-CP 2018") == ("61/2018/NĐ-CP 2018", [])
    assert split_case_id_words("2018-10 12.05.2020") == ("2018-10 12.05.2020", [])
    assert split_case_id_words("h56-200204 200204-0001") == ("", ["H56-200204", "200204-0001"])
    assert {h.case_id for h in filled.search("000.00.14.H56 quyet dinh")} == {CASE_A}
    # Only a case ID (or a part of one): the documents of the matching cases, newest first.
    hits = filled.search("H56-200203")
    assert [h.case_id for h in hits] == [CASE_C, CASE_A]
    assert all(h.page == 1 and h.score == 1.0 and h.snippet for h in hits)
    assert [h.document_id for h in filled.search("200204-0001")] == ["d-receipt"]
    assert [h.document_id for h in filled.search("000.17.22.H56-200203-0002")] == ["d-plain"]
    assert filled.search("000.17.22.H56-200203-0002", units=["000.00.14.H56"]) == []
    assert filled.search("999.99.99.H56") == []


def test_search_window_bounds_the_ranking(catalog: Catalog) -> None:
    for i in range(5):
        catalog.record_document(_doc(f"000.00.14.H56-20020{i + 1}-0001", f"d{i}",
                                     ["quyết định " * (5 - i) + "giấy phép"]))
    catalog.search_window = 3
    hits = catalog.search("quyet dinh")
    assert hits.capped and hits.matched == 3
    assert [h.document_id for h in hits] == ["d2", "d3", "d4"], "the best of the three most recent pages"
    catalog.search_window = 100
    hits = catalog.search("quyet dinh")
    assert not hits.capped and hits.matched == 5 and hits[0].document_id == "d0"


def test_list_cases_newest_first_with_counts(filled: Catalog) -> None:
    filled.record_document(_doc(CASE_A, "d-second", ["trang một", "trang hai", "trang ba"]))
    filled.record_document(_doc("TAM-0001", "d-provisional", ["tạm"]))
    cases = filled.list_cases()
    assert [c.case_id for c in cases] == [CASE_B, CASE_C, CASE_A, "TAM-0001"]
    a = next(c for c in cases if c.case_id == CASE_A)
    assert (a.document_count, a.page_count, a.received_on, a.agency) == (2, 5, "2020-02-03", "000.00.14.H56")
    assert a.last_stored_at and a.first_seen_at
    assert [c.case_id for c in filled.list_cases(units=["000.00.14.H56"])] == [CASE_B, CASE_A]
    assert filled.list_cases(units=[]) == []
    assert [c.case_id for c in filled.list_cases(case_prefix="000.17")] == [CASE_C]
    assert [c.case_id for c in filled.list_cases(since=dt.date(2020, 2, 4))] == [CASE_B]
    assert [c.case_id for c in filled.list_cases(until=dt.date(2020, 2, 3))] == [CASE_C, CASE_A]
    assert [c.case_id for c in filled.list_cases(limit=2, offset=1)] == [CASE_C, CASE_A]
    assert filled.count_cases() == 4 and filled.count_cases(units=["000.00.14.H56"]) == 2


@pytest.mark.parametrize("attempts, stored", [(5, True), (1, False)])
def test_sqlite_write_outlasts_a_lock_held_past_the_busy_timeout(tmp_path, monkeypatch, attempts, stored) -> None:
    """Another process holding SQLite's write lock longer than busy_timeout: the document's whole
    transaction is tried again (one attempt only, as before, answers "database is locked")."""
    import sqlite3
    import threading

    import storage.catalog as catalog_module
    import storage.catalog_schema as schema
    from models import StorageUnavailable

    monkeypatch.setattr(schema, "SQLITE_BUSY_MS", 100)
    monkeypatch.setattr(catalog_module, "SQLITE_WRITE_ATTEMPTS", attempts)
    path = tmp_path / "locked.sqlite3"
    cat = Catalog(f"sqlite:///{path}")
    cat.migrate()
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # the other writer has the lock
    release = threading.Timer(0.4, other.rollback)
    release.start()
    try:
        if stored:
            cat.record_document(_doc(CASE_A, "d-locked", ["trang một"]))
            assert [d.document_id for d in cat.documents_for_case(CASE_A)] == ["d-locked"]
        else:
            with pytest.raises(StorageUnavailable, match="locked"):
                cat.record_document(_doc(CASE_A, "d-locked", ["trang một"]))
    finally:
        release.join()
        other.close()
        cat.close()
