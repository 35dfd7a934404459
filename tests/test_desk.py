"""The scanning desk through the real intake flow: stacks split by cover sheets, page verdicts first.

Stacks are small PDFs made here: cover sheets from ``render_coversheet`` and short Vietnamese
text pages typeset with Pillow, each page with a word of its own so the test can tell which
e-file a page landed in (pdftotext of the stored searchable PDF).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from flows.common import open_archive
from flows.desk import intake
from models import CaseId
from pipeline.document import document_id_for
from pipeline.qr import render_coversheet
from pipeline.reader import sha256_of

DEFAULT = "000.00.01.H56-181010-0001"
CASE = "000.17.22.H56-200203-0118"
OTHER = "000.00.14.H56-200203-0119"
FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
DPI = 200


def text_page(marker: str, *, dpi: int = DPI) -> Image.Image:
    """An A4 page with a few lines of Vietnamese and ``marker`` (one unique word) on the first line."""
    width, height = round(8.27 * dpi), round(11.69 * dpi)
    page = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(page)
    font = ImageFont.truetype(FONT, round(16 * dpi / 72))
    lines = [f"Mã tài liệu {marker}", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
             "ĐƠN ĐỀ NGHỊ cấp giấy phép xây dựng", "Kính gửi: Ủy ban nhân dân tỉnh Tuyên Quang"]
    y = dpi
    for line in lines:
        draw.text((dpi, y), line, font=font, fill=0)
        y += round(16 * dpi / 72 * 1.6)
    return page


def sheet(case_id: str, *, dpi: int = DPI, qr_text: str | None = None) -> Image.Image:
    return render_coversheet(CaseId.parse(case_id), dpi=dpi, qr_text=qr_text)


def write_stack(path: Path, pages: list[Image.Image], *, dpi: int = DPI) -> Path:
    """A multi-page PDF of ``pages`` at ``dpi``, as a sheet-fed counter scanner writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pages[0].save(path, format="PDF", save_all=True, append_images=pages[1:], resolution=float(dpi))
    return path


def pdf_text(data_dir: Path, report: dict) -> str:
    pdf = data_dir / "objects" / report["stored_keys"]["searchable_pdf"]
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def split_stack_pdf(tmp_path) -> Path:
    """Loose page, sheet CASE, page, sheet OTHER, page: three dossiers, two sheets not stored."""
    return write_stack(tmp_path / "xap.pdf", [text_page("ALPHA"), sheet(CASE), text_page("BRAVO"),
                                              sheet(OTHER), text_page("CHARLIE")])


def test_a_stack_with_sheets_becomes_one_document_per_case(prefect_harness, data_dir, split_stack_pdf):
    reports = intake(files=[str(split_stack_pdf)], case_id=DEFAULT, operator="an")
    assert [(r["status"], r["case_id"], r["stack_pages"]) for r in reports] == [
        ("stored", DEFAULT, [1]), ("stored", CASE, [3]), ("stored", OTHER, [5])]
    sha = sha256_of(split_stack_pdf)
    assert [r["document_id"] for r in reports] == [document_id_for(sha, (1,)), document_id_for(sha, (3,)),
                                                   document_id_for(sha, (5,))]
    for report, mine, others in ((reports[0], "ALPHA", ("BRAVO", "CHARLIE")),
                                 (reports[1], "BRAVO", ("ALPHA", "CHARLIE")),
                                 (reports[2], "CHARLIE", ("ALPHA", "BRAVO"))):
        text = pdf_text(data_dir, report)
        assert mine in text
        assert not any(o in text for o in others)
        assert "BÌA" not in text.upper()  # the cover sheet is not part of the e-file
        assert report["page_count"] == 1
        # The original kept for each dossier holds its own page only; the whole stack is kept apart.
        source = data_dir / "objects" / report["stored_keys"]["source"]
        assert sha256_of(source) != sha
        assert subprocess.run(["pdfinfo", str(source)], capture_output=True, text=True).stdout.count("Pages:") == 1
        assert "Pages:           1" in subprocess.run(["pdfinfo", str(source)], capture_output=True, text=True).stdout
    assert sha256_of(data_dir / "objects" / "stacks" / sha / "source.pdf") == sha
    archive = open_archive()
    assert [len(archive.manifest_records(c)) for c in (DEFAULT, CASE, OTHER)] == [1, 1, 1]
    hits = archive.catalog.search("BRAVO")
    assert {h.case_id for h in hits} == {CASE}

    # The same stack again is recognised segment by segment: nothing is processed twice.
    again = intake(files=[str(split_stack_pdf)], case_id=DEFAULT)
    assert [r["status"] for r in again] == ["already-stored"] * 3
    assert [r["document_id"] for r in again] == [r["document_id"] for r in reports]
    assert [len(archive.manifest_records(c)) for c in (DEFAULT, CASE, OTHER)] == [1, 1, 1]


def test_a_stack_without_sheets_is_one_document_as_before(prefect_harness, data_dir, tmp_path):
    path = write_stack(tmp_path / "don.pdf", [text_page("DELTA")])
    [report] = intake(files=[str(path)], case_id=DEFAULT, write_check=True)
    assert report["status"] == "stored" and report["case_id"] == DEFAULT
    assert report["document_id"] == document_id_for(sha256_of(path))  # the whole file's id, as always
    assert report["stored_keys"]["source"] == f"cases/{DEFAULT}/documents/{report['document_id']}/source.pdf"
    assert "DELTA" in pdf_text(data_dir, report)
    check = (tmp_path / "don.pdf.check.txt").read_text("utf-8")
    assert "trang 1: đạt" in check and DEFAULT in check


def test_a_qr_that_is_not_a_case_id_is_reported_not_guessed(prefect_harness, data_dir, tmp_path):
    path = write_stack(tmp_path / "bien-nhan.pdf", [
        sheet(CASE, qr_text="https://dichvucong.gov.vn/tra-cuu?ma=000.17.22.H56-200203-0118"), text_page("ECHO")])
    [report] = intake(files=[str(path)], case_id=DEFAULT)
    # Not split, not filed under the case the URL happens to mention: one document of the given case.
    assert report["status"] == "stored" and report["case_id"] == DEFAULT
    assert report["document_id"] == document_id_for(sha256_of(path))
    assert report["page_count"] == 2
    [issue] = report["stack"]["issues"]
    assert issue["kind"] == "invalid_qr" and issue["page"] == 1
    assert "không phải mã hồ sơ" in issue["message_vi"] and "is not a case ID" in issue["message_en"]
    assert open_archive().manifest_records(CASE) == []


def test_pages_before_the_first_sheet_without_a_case_id_are_held_back(prefect_harness, data_dir, tmp_path):
    path = write_stack(tmp_path / "xap.pdf", [text_page("ALPHA"), sheet(CASE), text_page("BRAVO")])
    reports = intake(files=[str(path)], write_check=True)
    assert [(r["status"], r["case_id"], r["stack_pages"]) for r in reports] == [
        ("needs-case-id", None, [1]), ("stored", CASE, [3])]
    assert "mã hồ sơ" in reports[0]["message_vi"] and "case ID" in reports[0]["message_en"]
    assert "BRAVO" in pdf_text(data_dir, reports[1])
    check = (tmp_path / "xap.pdf.check.txt").read_text("utf-8")
    assert f"trang 2: tờ bìa hồ sơ {CASE}" in check
    assert "CHƯA CÓ MÃ HỒ SƠ" in check


def test_strict_refuses_a_page_to_rescan_before_anything_is_stored(prefect_harness, data_dir, tmp_path):
    # The second page was scanned at 90 dpi: unreadable, the operator must rescan it.
    low = text_page("HOTEL", dpi=90)
    path = tmp_path / "mo.pdf"
    sheet(CASE).save(path, format="PDF", resolution=float(DPI))
    low.save(path, format="PDF", append=True, resolution=90.0)
    [report] = intake(files=[str(path)], strict=True, write_check=True)
    assert report["status"] == "failed" and report["exit_code"] == 4
    assert "trang 2" in report["message_vi"]
    assert open_archive().manifest_records(CASE) == []
    assert "QUÉT LẠI" in (tmp_path / "mo.pdf.check.txt").read_text("utf-8")


def test_check_json_lists_the_verdicts_of_a_stack(tmp_path):
    """``sohoa check`` gives the page verdicts of a stack with no Prefect and no OCR; exit 0 when fine."""
    path = write_stack(tmp_path / "xap.pdf", [sheet(CASE), text_page("INDIA")])
    run = subprocess.run([sys.executable, "-m", "cli",
                          "check", "--json", str(path)], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert run.returncode == 0, run.stderr
    pages = json.loads(run.stdout)
    assert [p["number"] for p in pages] == [1, 2]
    assert not any(p["blank"] for p in pages)
