"""The catalog: the same tests on SQLite (FTS5) and PostgreSQL (tsvector + unaccent)."""
from __future__ import annotations

import datetime as dt

import pytest

from models import DocumentRecord, PageText
from storage.catalog import Catalog, fold, make_snippet

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


def test_case_prefix_and_since_filters(filled: Catalog) -> None:
    assert {h.case_id for h in filled.search("quyet dinh", case_prefix="000.00.14.H56")} == {CASE_A}
    assert {h.case_id for h in filled.search("quyet dinh", case_prefix="000.17.")} == {CASE_C}
    assert filled.search("quyet dinh", case_prefix="000.00.14.H56-2002%") == []  # % is not a wildcard
    assert {h.case_id for h in filled.search("quyet dinh", since=dt.date(2021, 1, 1))} == {CASE_C}
    assert filled.search("quyet dinh", since=dt.date(2022, 1, 1)) == []
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
