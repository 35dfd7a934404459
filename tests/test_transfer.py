"""Transfer packages: edit → export → verify round trip, BagIt and METS schema validity, tampering caught."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import bagit
import pytest
from lxml import etree

from models import DocumentRecord
from models.policy import Principal, Role
from pipeline import keyring, sign
from pipeline.package import verify_package
from storage.archive import Archive
from storage.catalog import Catalog
from tests.pki import test_pki  # noqa: F401 - fixture
from tests.test_archive import _ocr_json

UNIT = "000.00.14.H56"
CASE = f"{UNIT}-200203-0118"
SCHEMA_DIR = Path(__file__).parent / "data" / "mets"
LAN = Principal(name="lan", roles=frozenset({Role.ARCHIVIST}), units=frozenset({UNIT}))


@pytest.fixture(scope="module")
def pki_config(test_pki) -> keyring.SigningConfig:  # noqa: F811
    return keyring.load_signing_config(test_pki.keys_dir, env={})


@pytest.fixture(scope="module")
def signed_pdf(tmp_path_factory, sample_dossier, pki_config) -> tuple[Path, list[dict]]:
    """One page through the real pipeline (one Tesseract call), signed by the test operator and agency."""
    from pipeline.document import process_document

    work = tmp_path_factory.mktemp("signed")
    out = work / "searchable.pdf"
    process_document([sample_dossier[1]], workdir=work / "w", out_pdf=out, case_id=CASE, jobs=1)
    infos = sign.sign_pdf(out, config=pki_config, operator="thu.nguyen", result_code=None)
    return out, [dataclasses.asdict(i) for i in infos]


@pytest.fixture()
def stored(store, tmp_path, signed_pdf):
    """A case of two documents: a signed searchable PDF/A and an unsigned one, both with originals and OCR."""
    from flows.transfer import open_book

    catalog = Catalog(f"sqlite:///{tmp_path / 'cat.sqlite3'}")
    catalog.migrate()
    archive = Archive(store, catalog)
    for n, (pdf, sigs) in enumerate([signed_pdf, (None, [])], 1):
        doc = f"doc{n}"
        src = tmp_path / f"{doc}.tif"
        src.write_bytes(b"II*\x00" + bytes([n]) * 5000)
        original = archive.store_original(case_id=CASE, document_id=doc, source_path=src, source_name="scan.tif",
                                          ext="tif", operator="thu.nguyen")
        if pdf is None:
            pdf = tmp_path / f"{doc}.pdf"
            pdf.write_bytes(b"%PDF-1.7\n" + bytes([n]) * 3000 + b"\n%%EOF")
        searchable = archive.store_derived(case_id=CASE, document_id=doc, role="searchable_pdf", path=pdf,
                                           content_type="application/pdf", source_sha256=original.sha256)
        archive.record(DocumentRecord(
            case_id=CASE, document_id=doc, source_sha256=original.sha256, source_name="scan.tif",
            created_at=f"2020-02-03T08:0{n}:00+00:00", page_count=2, kind="Quyết định" if n == 1 else "Đơn đề nghị",
            operator="thu.nguyen", keys={"source": original.key, "searchable_pdf": searchable.key}, signatures=sigs,
            extracted=[{"name": "document_number", "value": f"{n}/QĐ-UBND", "page": 1, "box": None,
                        "confidence": 0.9}]),
            ocr_json=_ocr_json(CASE, doc, [f"Quyết định số {n}", "Điều 2"]))
    yield archive, open_book(archive)
    catalog.close()


def _export(archive, book, out: Path) -> Path:
    from flows.transfer import export_records

    (path,) = export_records(archive, book, [CASE], out, actor=LAN.actor)
    return path


def test_metadata_round_trips_edit_export_verify(stored, tmp_path, pki_config, data_dir):
    archive, book = stored
    book.edit(CASE, {"title": "Hồ sơ cấp phép của Nguyễn Văn A", "paper_code": "HS-2020-118", "sheets": "5",
                     "physical_state": "tốt"}, actor=LAN.actor)
    doc1 = book.record(CASE).documents[0].document_id
    book.edit_document(CASE, doc1, {"summary": "Về việc cấp giấy phép"}, actor=LAN.actor)
    path = _export(archive, book, tmp_path / "out")
    assert path.name == CASE
    assert verify_package(path, trust_roots=pki_config.trust_roots) == []
    bag = bagit.Bag(str(path))
    assert bag.is_valid() and "sha256" in bag.algorithms
    names = sorted(p.relative_to(path / "data").as_posix() for p in (path / "data").rglob("*") if p.is_file())
    assert f"objects/{CASE}.001.pdf" in names and f"originals/{CASE}.002.tif" in names
    assert f"ocr/{CASE}.001.txt" in names
    assert (path / "data" / "ocr" / f"{CASE}.001.txt").read_text(encoding="utf-8").startswith("Quyết định số 1\fĐiều 2")
    record = json.loads((path / "data" / "metadata" / "record.json").read_text(encoding="utf-8"))
    fields = record["Hồ sơ"]
    assert fields["Tiêu đề hồ sơ"] == "Hồ sơ cấp phép của Nguyễn Văn A"
    assert (fields["Mã hồ sơ gốc giấy"], fields["Số lượng tờ"], fields["Số lượng trang"]) == ("HS-2020-118", 5, 4)
    assert fields["Thời hạn lưu trữ"] == "20 năm"  # the schedule's period for a Quyết định
    docs = record["Tài liệu"]
    assert docs[0]["Trích yếu nội dung"] == "Về việc cấp giấy phép" and docs[0]["Số và ký hiệu văn bản"] == "1/QĐ-UBND"
    mets = etree.parse(str(path / "data" / "METS.xml"))
    schema = etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "mets.xsd")))
    assert schema.validate(mets), schema.error_log
    premis = {"p": "http://www.loc.gov/premis/v3"}
    types = [e.text for e in mets.iterfind(".//p:eventType", premis)]
    for kind in ("ingestion", "creation", "fixity check", "digital signature generation",
                 "digital signature validation", "metadata modification"):
        assert kind in types
    details = [e.text for e in mets.iterfind(".//p:eventDetail", premis)]
    assert any('"old": null' in d and "HS-2020-118" in d for d in details)
    assert "Hồ sơ cấp phép của Nguyễn Văn A" in etree.tostring(mets, encoding="unicode")
    assert [e.action for e in book.audit.entries(case_id=CASE)][-1] == "export"


def test_one_flipped_byte_fails_verify(stored, tmp_path, data_dir, test_pki, monkeypatch):  # noqa: F811
    from cli.main import main

    monkeypatch.setenv("SOHOA_KEYS_DIR", str(test_pki.keys_dir))  # the CLI checks signatures against its roots
    archive, book = stored
    path = _export(archive, book, tmp_path / "out")
    assert main(["archive", "verify", str(path)]) == 0
    for rel in (f"data/originals/{CASE}.002.tif", "data/METS.xml"):
        copy = tmp_path / f"copy-{Path(rel).name}"
        shutil.copytree(path, copy)
        target = copy / rel
        data = bytearray(target.read_bytes())
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        problems = verify_package(copy)
        assert problems and any(Path(rel).name in p.message() for p in problems)
        assert main(["archive", "verify", str(copy)]) == 5


def test_a_signed_pdf_changed_and_rebagged_is_caught(stored, tmp_path, pki_config, data_dir):
    archive, book = stored
    path = _export(archive, book, tmp_path / "out")
    pdf = path / "data" / "objects" / f"{CASE}.001.pdf"
    data = bytearray(pdf.read_bytes())
    at = data.index(b"/Contents") - 200  # inside the first signed revision, not in a signature value
    data[at] ^= 0x01
    pdf.write_bytes(bytes(data))
    bagit.Bag(str(path)).save(manifests=True)  # whoever changed it also rewrote the bag's manifests
    problems = [p.message() for p in verify_package(path, trust_roots=pki_config.trust_roots)]
    assert any("METS" in p for p in problems)
    assert any("chữ ký" in p for p in problems)
