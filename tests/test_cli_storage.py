"""The case handlers' commands (search, link, verify, reindex, retry) run in-process through ``sohoa``'s main.

Documents are recorded through the real Archive (no OCR here: flows/intake is tested in
test_flow_storage.py); the local folder + SQLite catalog from ``data_dir``, and once on SeaweedFS +
PostgreSQL for the presigned links.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from models import DocumentRecord
from storage.objectstore import searchable_key, source_key
from tests.servers import fetch

CASE = "000.00.14.H56-200203-0118"
OTHER = "000.00.22.H56-181010-0002"
TEXT_1 = "ỦY BAN NHÂN DÂN TỈNH TUYÊN QUANG QUYẾT ĐỊNH về việc ban hành Kế hoạch cải cách thủ tục hành chính"
TEXT_2 = "Điều 2. Quyết định này có hiệu lực kể từ ngày ký."
TEXT_3 = "GIẤY TIẾP NHẬN HỒ SƠ VÀ HẸN TRẢ KẾT QUẢ"


def _ocr_json(texts: list[str]) -> bytes:
    pages = [{"number": n, "text": t, "ocr": {"words": [[w, 1, 1, 1, 1, 91.0] for w in t.split()]}}
             for n, t in enumerate(texts, 1)]
    return json.dumps({"pages": pages}, ensure_ascii=False).encode()


def _record(tmp: Path, case: str, doc: str, texts: list[str], name: str) -> DocumentRecord:
    """Store a small original and PDF and record them, as the intake flow does."""
    from flows.common import open_archive

    archive = open_archive()
    src = tmp / f"{doc}.tif"
    src.write_bytes(f"II*\0 scan of {doc}".encode())
    original = archive.store_original(case_id=case, document_id=doc, source_path=src, source_name=name, ext="tif")
    pdf = tmp / f"{doc}.pdf"
    pdf.write_bytes(f"%PDF-1.7\n{doc}\n%%EOF\n".encode())
    searchable = archive.store_derived(case_id=case, document_id=doc, role="searchable_pdf", path=pdf,
                                       content_type="application/pdf", source_sha256=original.sha256)
    rec = DocumentRecord(case_id=case, document_id=doc, source_sha256=original.sha256, source_name=name,
                         created_at="2020-02-03T08:00:00+00:00", page_count=len(texts), kind="Quyết định",
                         keys={"source": original.key, "searchable_pdf": searchable.key})
    return archive.record(rec, ocr_json=_ocr_json(texts))


@pytest.fixture()
def dossiers(data_dir: Path, tmp_path: Path) -> Path:
    """Two cases in the local store and SQLite catalog."""
    _record(tmp_path, CASE, "doc-qd", [TEXT_1, TEXT_2], "Quyết định 264.tif")
    _record(tmp_path, OTHER, "doc-gtn", [TEXT_3], "Giấy tiếp nhận.tif")
    return data_dir


def _json(capsys) -> object:
    return json.loads(capsys.readouterr().out)


# ------------------------------------------------------------------------------------------ search
@pytest.mark.parametrize("query", ["quyet dinh", "Quyết Định", "QUYẾT ĐỊNH"])
def test_search_finds_with_and_without_diacritics(dossiers, capsys, query) -> None:
    assert main(["search", query, "--json"]) == 0
    hits = _json(capsys)
    assert {(h["case_id"], h["document_id"]) for h in hits} == {(CASE, "doc-qd")}
    assert {h["page"] for h in hits} == {1, 2}
    assert all("«" in h["snippet"] and "»" in h["snippet"] for h in hits)
    assert hits == sorted(hits, key=lambda h: -h["score"])


def test_search_human_output_shows_case_document_page_and_marked_snippet(dossiers, capsys) -> None:
    assert main(["search", "tiep nhan"]) == 0
    out = capsys.readouterr().out
    assert OTHER in out and "Giấy tiếp nhận.tif" in out and "doc-gtn" in out
    assert "trang/page 1" in out and "«TIẾP» «NHẬN»" in out


def test_search_filters_and_no_result(dossiers, capsys) -> None:
    assert main(["search", "ho so", "--case-prefix", "000.00.14", "--json"]) == 0
    assert _json(capsys) == []
    assert main(["search", "ho so", "--case-prefix", "000.00.22", "--json"]) == 0
    assert [h["case_id"] for h in _json(capsys)] == [OTHER]
    assert main(["search", "quyet dinh", "--since", "2999-01-01", "--json"]) == 0
    assert _json(capsys) == []
    assert main(["search", "quyet dinh", "--limit", "1", "--json"]) == 0
    assert len(_json(capsys)) == 1
    assert main(["search", "không có chữ này"]) == 0
    assert "Không tìm thấy" in capsys.readouterr().out


@pytest.mark.parametrize("args", [["search", "x", "--since", "10/10/2018"], ["search", "x", "--limit", "0"],
                                  ["link", CASE, "--expires", "8d"], ["link", CASE, "--expires", "soon"]])
def test_bad_values_exit_2_with_a_sentence(dossiers, capsys, args) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "(" in err and ")" in err  # Vietnamese sentence, English in brackets


# -------------------------------------------------------------------------------------------- link
def test_link_local_store_gives_file_urls_with_the_pdf_bytes(dossiers, capsys) -> None:
    assert main(["link", CASE, "--expires", "30m", "--json"]) == 0
    [link] = _json(capsys)
    assert link["document_id"] == "doc-qd" and link["source_name"] == "Quyết định 264.tif"
    assert fetch(link["url"]) == b"%PDF-1.7\ndoc-qd\n%%EOF\n"


def test_link_on_s3_downloads_the_same_bytes(s3_server, pg_url, data_dir, tmp_path, monkeypatch,
                                             capsys) -> None:
    if not s3_server.is_running():
        s3_server.start()
    monkeypatch.setenv("SOHOA_S3_ENDPOINT", s3_server.endpoint)
    monkeypatch.setenv("SOHOA_S3_ACCESS_KEY", s3_server.access_key)
    monkeypatch.setenv("SOHOA_S3_SECRET_KEY", s3_server.secret_key)
    monkeypatch.setenv("SOHOA_S3_BUCKET", "cli-link")
    monkeypatch.setenv("SOHOA_DATABASE_URL", pg_url)
    _record(tmp_path, CASE, "doc-qd", [TEXT_1], "Quyết định 264.tif")
    assert main(["link", CASE, "--expires", "1h"]) == 0
    out = capsys.readouterr().out
    url = next(line.strip() for line in out.splitlines() if line.strip().startswith("http"))
    assert "X-Amz-Expires=3600" in url
    assert fetch(url) == b"%PDF-1.7\ndoc-qd\n%%EOF\n"
    # search on PostgreSQL through the same command
    assert main(["search", "quyet dinh", "--json"]) == 0
    assert [h["document_id"] for h in _json(capsys)] == ["doc-qd"]


def test_link_unknown_case_exits_7(dossiers, capsys) -> None:
    assert main(["link", "000.00.01.H56-181010-0001"]) == 7
    assert "chưa có PDF" in capsys.readouterr().err


@pytest.mark.parametrize("command", [["link"], ["verify"], ["get", "-o", "x"]])
def test_malformed_case_id_exits_2_before_any_work(data_dir, capsys, command) -> None:
    assert main([*command[:1], "000.00.14.H56-201302-0118", *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "không phải mã hồ sơ hợp lệ" in err and "not a valid case ID" in err
    assert not (data_dir / "objects").exists()


# ------------------------------------------------------------------------------------------ verify
def test_verify_clean_then_reports_each_problem(dossiers, capsys) -> None:
    assert main(["verify"]) == 0
    assert "mọi mã SHA-256 đều khớp" in capsys.readouterr().out
    assert main(["verify", CASE, "--json"]) == 0
    report = _json(capsys)
    assert report["ok"] and report["objects"] == 3 and report["cases"] == 1

    objects = dossiers / "objects"
    (objects / searchable_key(CASE, "doc-qd")).write_bytes(b"%PDF-1.7 altered")  # bit rot / tampering
    (objects / source_key(OTHER, "doc-gtn", "tif")).unlink()  # lost object
    assert main(["verify"]) == 5
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("  ")]
    assert len(lines) == 2
    assert any("SAI MÃ SHA-256" in ln and "searchable.pdf" in ln and "manifest recorded" in ln for ln in lines)
    assert any("THIẾU" in ln and "source.tif" in ln and "not in the store" in ln for ln in lines)
    assert main(["verify", CASE, "--json"]) == 5
    [problem] = _json(capsys)["problems"]
    assert problem["problem"] == "checksum_mismatch" and problem["document_id"] == "doc-qd"


def test_verify_unknown_case_exits_7(dossiers, capsys) -> None:
    assert main(["verify", "000.00.01.H56-181010-0001"]) == 7


# ----------------------------------------------------------------------------------------- reindex
def test_reindex_after_dropping_the_catalog_gives_the_same_hits(dossiers, capsys) -> None:
    assert main(["search", "quyet dinh", "--json"]) == 0
    before = _json(capsys)
    from flows.common import open_archive

    open_archive().catalog.drop_all()
    assert main(["reindex"]) == 0
    out = capsys.readouterr().out
    assert "2 hồ sơ, 2 tài liệu, 3 trang" in out
    assert main(["search", "quyet dinh", "--json"]) == 0
    after = _json(capsys)
    assert [(h["case_id"], h["document_id"], h["page"]) for h in after] == \
        [(h["case_id"], h["document_id"], h["page"]) for h in before]


# ------------------------------------------------------------------------------------------- retry
def test_retry_with_an_empty_spool(data_dir, capsys) -> None:
    assert main(["retry"]) == 0
    assert "Hàng đợi trống" in capsys.readouterr().out
    assert main(["retry", "--json"]) == 0
    assert _json(capsys)["exit_code"] == 0


# ----------------------------------------------------------------------- cases, get --merged (issue 9 item 6)
def test_cases_lists_newest_first_with_counts_and_filters(dossiers, tmp_path, capsys) -> None:
    third = "000.00.14.H56-190312-0004"
    _record(tmp_path, third, "doc-old", [TEXT_3, TEXT_2, TEXT_1], "Hồ sơ cũ.tif")
    assert main(["cases", "--json"]) == 0
    cases = _json(capsys)
    assert [c["case_id"] for c in cases] == [CASE, third, OTHER], "newest received first"
    assert (cases[0]["document_count"], cases[0]["page_count"], cases[0]["received_on"]) == (1, 2, "2020-02-03")
    assert main(["cases", "--unit", "000.00.14.H56", "--json"]) == 0
    assert [c["case_id"] for c in _json(capsys)] == [CASE, third]
    assert main(["cases", "--since", "2019-01-01", "--until", "2019-12-31", "--json"]) == 0
    assert [c["case_id"] for c in _json(capsys)] == [third]
    assert main(["cases", "--limit", "1", "--json"]) == 0
    assert [c["case_id"] for c in _json(capsys)] == [CASE]
    assert main(["cases"]) == 0
    out = capsys.readouterr().out
    assert "3 hồ sơ" in out and f"{third}  tiếp nhận/received 2019-03-12  1 tài liệu/documents  3 trang/pages" in out
    assert main(["cases", "--since", "2030-01-01"]) == 0
    assert "Không có hồ sơ" in capsys.readouterr().out


def _real_pdf(tmp: Path, name: str, words: str, pages: int) -> Path:
    """A small searchable PDF/A (drawn words as the text layer, no Tesseract)."""
    from PIL import Image

    from models import BoundingBox, OcrPage, OcrWord
    from pipeline.pdf import PdfMetadata, RasterPage, build_searchable_pdf

    img = tmp / f"{name}.png"
    Image.new("1", (600, 200), 1).save(img, dpi=(200, 200))
    ocr = OcrPage(width=600, height=200, dpi=200, words=[
        OcrWord(text=w, box=BoundingBox(20 + 110 * i, 50, 100, 40), confidence=95.0) for i, w in enumerate(words.split())])
    return build_searchable_pdf([RasterPage(ocr_image=img, colour_image=None, dpi=200, ocr=ocr)] * pages,
                                tmp / f"{name}.pdf",
                                metadata=PdfMetadata(title=name, case_id=CASE, source_sha256="ab" * 32,
                                                     software_version="test"))


def test_get_merged_writes_one_pdf_with_a_bookmark_per_document(data_dir, tmp_path, capsys) -> None:
    import subprocess

    from flows.common import open_archive
    from pipeline.pdf import pdf_outline, pdfa_problems

    archive = open_archive()
    for n, (doc, words, pages, kind) in enumerate([("doc-don", "ĐƠN ĐỀ NGHỊ", 1, "Đơn đề nghị"),
                                                    ("doc-qd", "QUYẾT ĐỊNH GIAO ĐẤT", 2, "Quyết định")]):
        src = tmp_path / f"{doc}.tif"
        src.write_bytes(f"II*\0 scan of {doc}".encode())
        original = archive.store_original(case_id=CASE, document_id=doc, source_path=src, source_name=f"{doc}.tif",
                                          ext="tif")
        pdf = archive.store_derived(case_id=CASE, document_id=doc, role="searchable_pdf",
                                    path=_real_pdf(tmp_path, doc, words, pages), content_type="application/pdf",
                                    source_sha256=original.sha256)
        archive.record(DocumentRecord(case_id=CASE, document_id=doc, source_sha256=original.sha256,
                                      source_name=f"{doc}.tif", created_at=f"2020-02-03T0{8 + n}:00:00+00:00",
                                      page_count=pages, kind=kind, keys={"source": original.key,
                                                                         "searchable_pdf": pdf.key}))
    out = tmp_path / "out" / "ho-so.pdf"
    assert main(["get", CASE, "--merged", "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    assert pdf_outline(out) == [("1. Đơn đề nghị — doc-don.tif (1 trang)", 0),
                                ("2. Quyết định — doc-qd.tif (2 trang)", 1)]
    text = subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True, check=True).stdout
    assert [t.split() for t in text.strip("\f\n").split("\f")] == [["ĐƠN", "ĐỀ", "NGHỊ"]] + \
        [["QUYẾT", "ĐỊNH", "GIAO", "ĐẤT"]] * 2
    assert pdfa_problems(out) == []
    assert main(["get", "000.00.01.H56-181010-0001", "--merged", "-o", str(tmp_path / "x.pdf")]) == 7
    err = capsys.readouterr().err
    assert "000.00.01.H56-181010-0001" in err and "(" in err
