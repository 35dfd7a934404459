"""The intake flow signs before storing (real Prefect, local store, SQLite), and the signing commands."""
from __future__ import annotations

import json

import pytest

from cli.main import main
from flows.common import open_archive, settings
from flows.desk import intake
from pipeline import keyring, sign

CASE = "000.00.01.H56-181010-0001"
CITIZEN_ID = "008085001234"  # on page 1 of the sample dossier


def _keys(data_dir) -> keyring.SigningConfig:
    return keyring.init_test_keys(keyring.keys_dir_for(data_dir, env={}), operator="an")


def _tamper(path) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    data = path.read_bytes()
    import io

    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    box = writer.add_object(generic.StreamObject(stream_data=b"1 1 1 rg 0 0 300 300 re f"))
    writer.add_stream_to_page(0, box, prepend=False)
    out = io.BytesIO()
    writer.write(out)
    path.write_bytes(out.getvalue())


def test_intake_stores_a_signed_pdf_with_result_code_and_fields(prefect_harness, data_dir, sample_dossier, capsys):
    config = _keys(data_dir)
    [report] = intake(files=[str(sample_dossier[1])], case_id=CASE, kind="Đơn đề nghị", operator="an")
    assert report["status"] == "stored"
    assert report["signing"]["status"] == "signed" and report["signing"]["test_keys"] is True
    assert [s["role"] for s in report["signing"]["signatures"]] == ["operator", "agency"]
    assert report["result_code"] == f"{CASE}-KQ{report['document_id'][:10].upper()}"

    stored_pdf = data_dir / "objects" / report["stored_keys"]["searchable_pdf"]
    checks = sign.verify_pdf(stored_pdf, trust_roots=config.trust_roots)
    assert [(c.field, c.level, c.problems) for c in checks] == [
        (sign.OPERATOR_FIELD, "PAdES-B-T", []), (sign.AGENCY_FIELD, "PAdES-B-T", [])]

    archive = open_archive()
    manifest = json.loads(archive.store.get_bytes(f"cases/{CASE}/manifest.json"))
    [entry] = manifest["documents"]
    assert entry["result_code"] == report["result_code"] and len(entry["signatures"]) == 2
    ids = [f for f in entry["extracted"] if f["name"] == "citizen_id"]
    assert [f["value"] for f in ids] == [CITIZEN_ID] and ids[0]["page"] == 1 and len(ids[0]["box"]) == 4
    # The stored checksum is the signed PDF's: fixity and signatures both check out.
    assert archive.verify(CASE) == []

    assert main(["search", "--id", CITIZEN_ID]) == 0
    out = capsys.readouterr().out
    assert CASE in out and "citizen_id" in out and report["result_code"] in out
    assert main(["search", "--id", report["result_code"].lower(), "--json"]) == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["matched"] == "result_code" and hit["document_id"] == report["document_id"]
    assert main(["show", CASE]) == 0
    out = capsys.readouterr().out
    assert report["result_code"] in out and "PAdES-B-T" in out and f"(citizen_id): {CITIZEN_ID}" in out

    assert main(["verify", "--signatures", CASE]) == 0
    from flows.signing import document_signatures

    shown = document_signatures(CASE, report["document_id"])
    assert [(s["signer"], s["valid"]) for s in shown] == [("an [TEST]", True),
                                                          ("UBND TỈNH THỬ NGHIỆM (TEST) [TEST]", True)]
    # Reindexing from the manifests keeps what the catalog knows about signing and extraction.
    assert main(["reindex"]) == 0
    capsys.readouterr()
    assert [r.document_id for r, _ in archive.catalog.find_by_identifier(CITIZEN_ID)] == [report["document_id"]]

    _tamper(stored_pdf)
    assert main(["verify", "--signatures", CASE]) == 5
    out = capsys.readouterr().out
    assert out.count("content was added or changed after this signature") == 2


def test_without_keys_the_pdf_is_stored_unsigned_and_signed_later(prefect_harness, data_dir, sample_dossier, capsys):
    [report] = intake(files=[str(sample_dossier[1])], case_id=CASE, operator="an")
    assert report["status"] == "stored"
    assert report["signing"]["status"] == "unsigned" and report["signing"]["message_vi"].startswith("chưa ký số")
    archive = open_archive()
    stored_pdf = data_dir / "objects" / report["stored_keys"]["searchable_pdf"]
    assert sign.verify_pdf(stored_pdf, trust_roots=()) == []
    assert archive.catalog.unsigned_documents() == [(CASE, report["document_id"])]
    assert main(["verify", "--signatures", CASE]) == 5
    assert "chưa ký số" in capsys.readouterr().out

    assert main(["keys", "init-test", "--operator", "an"]) == 0
    assert main(["sign", "--all-unsigned"]) == 0
    out = capsys.readouterr()
    assert "KHÓA THỬ NGHIỆM" in out.err and report["result_code"] in out.out
    config = keyring.load_signing_config(keyring.keys_dir_for(settings().data_dir))
    checks = sign.verify_pdf(stored_pdf, trust_roots=config.trust_roots)
    assert [(c.field, c.problems) for c in checks] == [(sign.AGENCY_FIELD, [])]  # agency only: no operator later
    from tests.pdfa_rules import pdfa2b_problems

    assert pdfa2b_problems(stored_pdf) == []  # `sohoa sign` later keeps the e-copy PDF/A-2b
    [rec] = archive.manifest_records(CASE)
    assert [s["role"] for s in rec.signatures] == ["agency"] and rec.result_code == report["result_code"]
    assert archive.verify(CASE) == []  # the manifest's checksum follows the new version
    assert archive.catalog.unsigned_documents() == []
    assert main(["verify", "--signatures"]) == 0
    assert main(["sign", "--all-unsigned"]) == 0  # nothing left: nothing signed twice
    assert len(sign.verify_pdf(stored_pdf, trust_roots=config.trust_roots)) == 1


def test_backfill_signs_with_the_agency_key_only(data_dir, tmp_path):
    from flows.signing import sign_file

    config = _keys(data_dir)
    keyring.register_operator_signer(config.keys_dir, "backfill", config.operators["an"])
    pdf = tmp_path / "doc.pdf"
    import pikepdf

    with pikepdf.new() as doc:
        doc.add_blank_page(page_size=(595, 842))
        doc.save(pdf)
    report = sign_file(pdf, operator="backfill", result_code=None,
                       config=keyring.load_signing_config(config.keys_dir, env={}))
    assert [s["role"] for s in report["signatures"]] == ["agency"]


def test_init_test_refuses_to_overwrite_real_keys(data_dir):
    keys_dir = keyring.keys_dir_for(data_dir, env={})
    keyring.save_signing_config(keys_dir, agency_name="UBND", agency=None)
    with pytest.raises(keyring.KeyConfigError):
        keyring.init_test_keys(keys_dir)


def test_init_test_again_keeps_the_test_ca(data_dir):
    keys_dir = keyring.keys_dir_for(data_dir, env={})
    first = keyring.init_test_keys(keys_dir, operator="an")
    root = first.trust_roots[0].read_bytes()
    assert keyring.init_test_keys(keys_dir, operator="an").trust_roots[0].read_bytes() == root
    # Another operator gets a personal TEST key from the same CA: earlier signatures keep verifying.
    more = keyring.init_test_keys(keys_dir, operator="Lê Thị Lan")
    assert more.trust_roots[0].read_bytes() == root and set(more.operators) == {"an", "le-thi-lan"}
    import pikepdf

    pdf = data_dir / "blank.pdf"
    with pikepdf.new() as doc:
        doc.add_blank_page(page_size=(595, 842))
        doc.save(pdf)
    infos = sign.sign_pdf(pdf, config=more, operator="Lê Thị Lan", result_code=None)
    assert [i.signer for i in infos] == ["Lê Thị Lan [TEST]", "UBND TỈNH THỬ NGHIỆM (TEST) [TEST]"]
    assert [c.problems for c in sign.verify_pdf(pdf, trust_roots=first.trust_roots)] == [[], []]
    assert keyring.init_test_keys(keys_dir, operator="an", force=True).trust_roots[0].read_bytes() != root
