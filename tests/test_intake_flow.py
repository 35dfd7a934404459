"""The intake flow on the embedded default (local folder store, SQLite catalog) under a real Prefect API."""
from __future__ import annotations

import json
import subprocess

import pytest

from flows.common import open_archive
from flows.desk import intake
from models import InvalidCaseId, OcrFailed
from pipeline import ocr as ocr_module

CASE = "000.00.01.H56-181010-0001"


@pytest.fixture
def stored(prefect_harness, data_dir, sample_dossier):
    """The sample TIFF ingested once into a fresh data directory."""
    [report] = intake(files=[str(sample_dossier[0])], case_id=CASE, kind="Đơn đề nghị", operator="an")
    return report


def test_document_is_stored_laid_out_and_catalogued(stored, data_dir):
    assert stored["status"] == "stored" and stored["page_count"] == 3
    doc = stored["document_id"]
    keys = stored["stored_keys"]
    assert keys["source"] == f"cases/{CASE}/documents/{doc}/source.tif"
    assert keys["searchable_pdf"] == f"cases/{CASE}/documents/{doc}/searchable.pdf"
    archive = open_archive()
    pdf = data_dir / "objects" / keys["searchable_pdf"]
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    assert "Tuyên Quang" in text
    manifest = json.loads(archive.store.get_bytes(f"cases/{CASE}/manifest.json"))
    assert [d["document_id"] for d in manifest["documents"]] == [doc]
    hits = archive.catalog.search("quyet dinh")
    assert hits and hits[0].case_id == CASE and hits[0].document_id == doc


def test_same_file_twice_is_one_document(stored, sample_dossier):
    [again] = intake(files=[str(sample_dossier[0])], case_id=CASE)
    assert again["status"] == "already-stored"
    assert again["document_id"] == stored["document_id"]
    assert len(open_archive().manifest_records(CASE)) == 1


def test_a_bad_file_is_reported_and_the_others_go_on(prefect_harness, data_dir, sample_dossier, tmp_path):
    bad = tmp_path / "hong.pdf"
    bad.write_text("không phải PDF", encoding="utf-8")
    reports = intake(files=[str(bad), str(sample_dossier[1])], case_id=CASE)
    assert reports[0]["status"] == "failed" and reports[0]["exit_code"] == 3
    assert "hong.pdf" in reports[0]["error"]
    assert reports[1]["status"] == "stored"
    store = open_archive().store
    stored_keys = list(store.list(f"cases/{CASE}/"))
    assert not any("hong" in k for k in stored_keys)
    assert sum(k.endswith("/searchable.pdf") for k in stored_keys) == 1


def test_ocr_failure_keeps_the_original_and_a_rerun_completes(prefect_harness, data_dir, sample_dossier,
                                                               monkeypatch):
    def broken(*args, **kwargs):
        raise OcrFailed("Tesseract crashed (test)", "Tesseract lỗi (thử nghiệm)")

    with monkeypatch.context() as patch:
        patch.setattr(ocr_module, "recognise", broken)
        [failed] = intake(files=[str(sample_dossier[2])], case_id=CASE)
    assert failed["status"] == "failed" and failed["exit_code"] == 6
    store = open_archive().store
    keys = list(store.list(f"cases/{CASE}/"))
    assert any(k.endswith("/source.jpg") for k in keys), keys
    assert not any(k.endswith("/searchable.pdf") for k in keys)

    [done] = intake(files=[str(sample_dossier[2])], case_id=CASE)
    assert done["status"] == "stored"
    assert sum(k.endswith("/source.jpg") for k in store.list(f"cases/{CASE}/")) == 1


def test_malformed_case_id_stops_before_anything(prefect_harness, data_dir, sample_dossier):
    with pytest.raises(InvalidCaseId):
        intake(files=[str(sample_dossier[0])], case_id="000.00.01.H56-181310-0001")
    assert not (data_dir / "objects").exists() or not any((data_dir / "objects").rglob("source.*"))


def test_blank_duplex_back_is_left_out_of_the_stored_document(prefect_harness, data_dir, sample_dossier, tmp_path):
    from PIL import Image

    front = Image.open(sample_dossier[3])
    stack = tmp_path / "duplex.tif"
    front.save(stack, save_all=True, append_images=[Image.new("L", front.size, 236)], dpi=(300, 300))
    [report] = intake(files=[str(stack)], case_id=CASE)
    assert report["status"] == "stored" and report["page_count"] == 1
    [record] = open_archive().catalog.documents_for_case(CASE, with_pages=True)
    assert [p.number for p in record.pages] == [1]
    assert "TIẾP NHẬN" in record.pages[0].text
