"""Record metadata (defaults, edits audited with the old value) and two-person disposal on both stores."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from models import DocumentRecord
from models.policy import Principal, Role
from models.retention import RetentionRules
from storage.audit import AuditTrail
from storage.catalog import Catalog
from storage.disposal import DisposalRefused, Disposals
from storage.objectstore import case_prefix, ocr_key, searchable_key, source_key
from storage.records import RecordBook

UNIT = "000.00.14.H56"
CASE = f"{UNIT}-200203-0118"
OTHER = f"{UNIT}-200203-0119"
LAN = Principal(name="lan", roles=frozenset({Role.ARCHIVIST}), units=frozenset({UNIT}))
MAI = Principal(name="mai", roles=frozenset({Role.ARCHIVIST}), units=frozenset({UNIT}))
HEAD = Principal(name="head", roles=frozenset({Role.APPROVER}), units=frozenset({UNIT}))
# One person holding both roles (e.g. from single sign-on): still cannot approve their own list.
LAN_BOTH = Principal(name="lan", roles=frozenset({Role.ARCHIVIST, Role.APPROVER}), units=frozenset({UNIT}))


def _put_case(store, catalog: Catalog, case_id: str, *, kind: str = "Đơn đề nghị") -> None:
    doc = "d" + case_id[-4:]
    keys = {"source": source_key(case_id, doc, "pdf"), "searchable_pdf": searchable_key(case_id, doc),
            "ocr_json": ocr_key(case_id, doc)}
    for role, key in keys.items():
        body = f"{role} v1 {case_id}" if role != "ocr_json" else json.dumps({"case_id": case_id, "pages": []})
        store.put_bytes(key, body.encode(), metadata={"case-id": case_id}, content_type="x/y")
    # A second version of the searchable PDF (a later signature) and a deleted object: both must go too.
    if hasattr(store, "keep_version"):
        store.keep_version(keys["searchable_pdf"])
    store.put_bytes(keys["searchable_pdf"], b"signed v2", metadata={"case-id": case_id}, content_type="x/y")
    store.put_bytes(f"{case_prefix(case_id)}old.json", b"old", metadata={}, content_type="x/y")
    store.delete(f"{case_prefix(case_id)}old.json")
    catalog.record_document(DocumentRecord(
        case_id=case_id, document_id=doc, source_sha256="0" * 64, source_name="scan.pdf",
        created_at="2020-02-03T08:00:00+00:00", page_count=3, keys=keys, kind=kind,
        extracted=[{"name": "document_number", "value": "264/QĐ-UBND", "page": 1, "box": None, "confidence": 0.9},
                   {"name": "document_date", "value": "2020-01-15", "page": 1, "box": None, "confidence": 0.8},
                   {"name": "issuing_body", "value": "UBND HUYỆN A", "page": 1, "box": None, "confidence": 0.7}]))


@pytest.fixture()
def book(catalog_url):
    catalog = Catalog(catalog_url)
    catalog.migrate()
    yield RecordBook(catalog, AuditTrail(catalog.engine), RetentionRules.load(None))
    catalog.close()


def test_record_defaults_come_from_intake_extraction_and_rules(book, local_store):
    _put_case(local_store, book.catalog, CASE, kind="Giấy khai sinh")
    rec = book.record(CASE)
    doc = rec.documents[0]
    assert (doc.number_symbol, doc.date, doc.issuing_body) == ("264/QĐ-UBND", "2020-01-15", "UBND HUYỆN A")
    assert doc.set_by["number_symbol"] == "extraction"
    assert rec.retention == "permanent" and rec.set_by["retention"] == "rules:kind:Giấy khai sinh"
    assert rec.title == f"Hồ sơ Giấy khai sinh số {CASE}" and rec.set_by["title"] == "default"
    assert (rec.start_date, rec.end_date, rec.page_count, rec.document_count) == ("2020-01-15", "2020-01-15", 3, 1)


def test_edits_are_audited_with_the_old_value(book, local_store):
    _put_case(local_store, book.catalog, CASE)
    old_title = book.record(CASE).title
    rec = book.edit(CASE, {"title": "Hồ sơ cấp phép của Nguyễn Văn A", "retention": "vĩnh viễn", "sheets": "4"},
                    actor=LAN.actor)
    assert rec.title == "Hồ sơ cấp phép của Nguyễn Văn A" and rec.set_by["title"] == "user:lan"
    assert rec.retention == "permanent" and rec.sheets == 4
    rec = book.edit_document(CASE, rec.documents[0].document_id, {"summary": "Về việc cấp phép"}, actor=LAN.actor)
    assert rec.documents[0].summary == "Về việc cấp phép" and rec.documents[0].set_by["summary"] == "user:lan"
    edits = [json.loads(e.detail) for e in book.audit.entries(case_id=CASE) if e.action == "record_edit"]
    assert {"field": "title", "old": old_title, "new": "Hồ sơ cấp phép của Nguyễn Văn A"} in edits
    assert {"field": "retention", "old": "10", "new": "permanent"} in edits
    assert {"field": "summary", "old": None, "new": "Về việc cấp phép"} in edits
    with pytest.raises(Exception, match="retention"):
        book.edit(CASE, {"retention": "forever"}, actor=LAN.actor)
    assert book.audit.verify() == []


def _due_case(book, store, case_id: str) -> None:
    _put_case(store, book.catalog, case_id)
    book.edit(case_id, {"retention": "5", "closed_on": "2010-06-30"}, actor=LAN.actor)


def test_disposal_needs_a_second_person_then_destroys_every_version(book, store):
    _due_case(book, store, CASE)
    _put_case(store, book.catalog, OTHER)  # not closed: never due, must stay untouched
    assert [r.case_id for r in book.due(before=dt.date.today())] == [CASE]
    disposals = Disposals(book, store, book.audit)
    p = disposals.propose(LAN, [CASE], reason="hết hạn")
    with pytest.raises(DisposalRefused):  # no approval yet
        disposals.carry_out(p.id)
    with pytest.raises(DisposalRefused, match="own disposal list"):  # the proposer cannot approve
        disposals.approve(LAN_BOTH, p.id, decision_number="12/QĐ-UBND", decision_date=dt.date(2026, 12, 1))
    with pytest.raises(DisposalRefused, match="may not"):  # another archivist lacks the approving role
        disposals.approve(MAI, p.id, decision_number="12/QĐ-UBND", decision_date=dt.date(2026, 12, 1))
    assert list(store.list(case_prefix(CASE)))  # nothing destroyed so far
    stones = disposals.approve(HEAD, p.id, decision_number="12/QĐ-UBND", decision_date=dt.date(2026, 12, 1))
    assert store.residue(case_prefix(CASE)) == []
    assert list(store.list(case_prefix(OTHER)))
    stone = disposals.tombstone(CASE)
    assert stone and stones[0]["case_id"] == CASE
    assert (stone["proposer"], stone["approver"], stone["decision_number"]) == ("user:lan", "user:head", "12/QĐ-UBND")
    hashes = {d["sha256"] for d in stone["destroyed"] if d["sha256"]}
    assert len(hashes) >= 4  # three v1 objects and the signed v2 (and the old searchable version)
    assert book.catalog.documents_for_case(CASE) == []
    assert book.audit.verify() == []
    assert [e.action for e in book.audit.entries(case_id=CASE)][-1] == "dispose"
    assert disposals.get(p.id).status == "done"


def test_a_held_case_cannot_be_disposed(book, local_store):
    _due_case(book, local_store, CASE)
    disposals = Disposals(book, local_store, book.audit)
    book.set_hold(CASE, "đang thanh tra", actor=LAN.actor)
    with pytest.raises(DisposalRefused, match="legal hold"):
        disposals.propose(LAN, [CASE], reason="hết hạn")
    book.set_hold(CASE, None, actor=LAN.actor)
    p = disposals.propose(LAN, [CASE], reason="hết hạn")
    book.set_hold(CASE, "khiếu nại", actor=LAN.actor)  # a hold after the proposal still blocks
    with pytest.raises(DisposalRefused, match="legal hold"):
        disposals.approve(HEAD, p.id, decision_number="1/QĐ", decision_date=dt.date(2026, 12, 1))
    assert list(local_store.list(case_prefix(CASE))) and disposals.tombstone(CASE) is None


def test_a_record_not_past_its_retention_cannot_be_proposed(book, local_store):
    _put_case(local_store, book.catalog, CASE)
    book.edit(CASE, {"retention": "50", "closed_on": "2020-01-01"}, actor=LAN.actor)
    with pytest.raises(DisposalRefused, match="not past"):
        Disposals(book, local_store, book.audit).propose(LAN, [CASE], reason="x")


def test_record_values_and_tombstones_survive_a_catalog_rebuilt_from_the_store(tmp_path, store):
    from storage.archive import Archive
    from storage.disposal import restore_tombstones

    catalog = Catalog(f"sqlite:///{tmp_path / 'a.sqlite3'}")
    catalog.migrate()
    book = RecordBook(catalog, AuditTrail(catalog.engine), RetentionRules.load(None), store)
    _put_case(store, catalog, OTHER)
    _due_case(book, store, CASE)
    for case_id in (CASE, OTHER):  # reindex reads manifests: give the synthetic cases one
        store.put_bytes(f"{case_prefix(case_id)}manifest.json", json.dumps({"documents": [
            {**book.catalog.documents_for_case(case_id)[0].to_manifest(), "checksums": {}}]}).encode(),
            metadata={}, content_type="application/json")
    book.edit(OTHER, {"paper_code": "HS-7", "title": "Hồ sơ của bà B"}, actor=LAN.actor)
    book.set_hold(OTHER, "thanh tra", actor=LAN.actor)
    disposals = Disposals(book, store, book.audit)
    p = disposals.propose(LAN, [CASE], reason="hết hạn")
    disposals.approve(HEAD, p.id, decision_number="3/QĐ", decision_date=dt.date(2026, 12, 1))
    assert store.exists(f"tombstones/{CASE}.json") and store.exists(RecordBook.record_key(OTHER))
    catalog.close()

    fresh = Catalog(f"sqlite:///{tmp_path / 'b.sqlite3'}")  # a new, empty database
    Archive(store, fresh).reindex()
    again = RecordBook(fresh, AuditTrail(fresh.engine), RetentionRules.load(None), store)
    assert again.restore() == 1
    rec = again.record(OTHER)
    assert (rec.paper_code, rec.title, rec.legal_hold) == ("HS-7", "Hồ sơ của bà B", "thanh tra")
    assert rec.set_by["paper_code"] == "user:lan"
    assert restore_tombstones(fresh.engine, store) == 1
    assert Disposals(again, store, again.audit).tombstone(CASE)["decision_number"] == "3/QĐ"
    fresh.close()
