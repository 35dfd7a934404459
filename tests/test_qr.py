"""Cover sheets, case-ID QR detection on scanner-like pages, and splitting a stack into dossiers.

Pages are printed and "scanned" by the same simulator the benchmark uses (bench/desk/qr_eval.py):
rendered at 300 dpi, blurred, resampled to 200/300 dpi, grey paper, noise, skew, quarter turns,
JPEG. Each assertion is something the operator would notice: a missed sheet files a dossier
under the wrong case; a false hit on a text page cuts a dossier in two.
"""
from __future__ import annotations

import shutil
import subprocess
import zlib

import cv2
import numpy as np
import pytest

from bench.desk.qr_eval import Degradation, receipt_page, scan, seed_paragraphs, text_page
from models import CaseId
from pipeline.qr import (
    QrFinding,
    Segment,
    detect_case_qr,
    render_coversheet,
    split_stack,
    write_coversheets,
)

CASE = CaseId.parse("000.00.01.H56-181010-0001")
OTHER = CaseId.parse("000.17.22.H56-200203-0118")
THIRD = CaseId.parse("000.00.14.H56-200203-0119")


@pytest.fixture(scope="module")
def sheet_300():
    """The printed cover sheet (the 'paper'), rendered once for every scan below."""
    return render_coversheet(CASE, dpi=300)


@pytest.fixture(scope="module")
def paragraphs():
    return seed_paragraphs()


# ------------------------------------------------------------------ the printed sheet


def test_coversheet_is_a4_and_reads_back_clean():
    page = render_coversheet(CASE, dpi=200)
    assert page.size == (1654, 2339)  # 210 × 297 mm at 200 dpi
    finding = detect_case_qr(np.asarray(page), dpi=200)
    assert finding == QrFinding(text=str(CASE), case_id=CASE, valid=True)


def test_qr_symbol_is_about_five_centimetres(sheet_300):
    grey = np.asarray(sheet_300)
    ok, points = cv2.QRCodeDetector().detect(grey)
    assert ok
    side_mm = np.linalg.norm(points[0][1] - points[0][0]) / 300 * 25.4
    assert 40 <= side_mm <= 55


def test_coversheet_pdf_has_one_a4_page_per_case(tmp_path):
    pdf = write_coversheets([CASE, OTHER, THIRD], tmp_path / "out" / "to_bia.pdf")
    assert pdf.exists()
    if shutil.which("pdfinfo") is None or shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils not installed")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert "Pages:           3" in info
    assert "(A4)" in info
    # What the printer gets must still read as the right case, page by page.
    subprocess.run(["pdftoppm", "-r", "150", "-gray", "-png", str(pdf), str(tmp_path / "p")], check=True)
    pngs = sorted(tmp_path.glob("p-*.png"))
    read = [detect_case_qr(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), dpi=150) for p in pngs]
    assert [f.case_id for f in read] == [CASE, OTHER, THIRD]


def test_coversheets_refuse_an_empty_list(tmp_path):
    with pytest.raises(ValueError):
        write_coversheets([], tmp_path / "x.pdf")


# ------------------------------------------------------------------ detection on degraded scans

HARSH = dict(blur_sigma=1.2, noise_sigma=12.0, paper_grey=190, jpeg_quality=60)
SCANS = [
    Degradation(scan_dpi=200),
    Degradation(scan_dpi=300),
    *[Degradation(scan_dpi=dpi, rotate=rot, skew_deg=skew, **HARSH)
      for dpi, rot, skew in [(200, 90, 3.0), (200, 180, -3.0), (200, 270, 2.0),
                             (300, 90, -2.5), (300, 180, 3.0), (300, 270, -3.0)]],
    Degradation(scan_dpi=200, skew_deg=-1.5, jpeg_quality=85, colour=True),
    Degradation(scan_dpi=300, rotate=90, jpeg_quality=70, colour=True, blur_sigma=1.0),
]


@pytest.mark.parametrize("deg", SCANS, ids=[d.label() for d in SCANS])
def test_sheet_found_on_degraded_scan(sheet_300, deg):
    image = scan(sheet_300, deg, seed=zlib.crc32(deg.label().encode()))
    finding = detect_case_qr(image, dpi=deg.scan_dpi)
    assert finding is not None and finding.valid
    assert finding.case_id == CASE


def test_sheet_found_without_being_told_the_dpi(sheet_300):
    image = scan(sheet_300, Degradation(scan_dpi=300, rotate=180, skew_deg=2.0, **HARSH), seed=5)
    finding = detect_case_qr(image)
    assert finding is not None and finding.case_id == CASE


@pytest.mark.parametrize("dpi", [200, 300])
def test_receipt_with_small_corner_qr(dpi):
    page = receipt_page(str(OTHER))
    image = scan(page, Degradation(scan_dpi=dpi, rotate=270, skew_deg=1.5, blur_sigma=0.8,
                                   noise_sigma=8, paper_grey=215, jpeg_quality=75), seed=dpi)
    finding = detect_case_qr(image, dpi=dpi)
    assert finding is not None and finding.case_id == OTHER


@pytest.mark.parametrize("n", range(4))
def test_no_qr_on_text_pages(paragraphs, n):
    deg = [Degradation(scan_dpi=200), Degradation(scan_dpi=300, rotate=90, skew_deg=2.0, **HARSH),
           Degradation(scan_dpi=200, rotate=180, skew_deg=-3.0, **HARSH),
           Degradation(scan_dpi=300, colour=True, jpeg_quality=85)][n]
    image = scan(text_page(paragraphs, start=11 * n), deg, seed=n)
    assert detect_case_qr(image, dpi=deg.scan_dpi) is None


def test_blank_and_tiny_pages_have_no_qr():
    assert detect_case_qr(np.full((2339, 1654), 240, np.uint8), dpi=200) is None
    assert detect_case_qr(np.zeros((40, 30, 3), np.uint8)) is None


def test_qr_that_is_not_a_case_id_is_reported_invalid():
    url = "HTTPS://DICHVUCONG.GOV.VN/TRA-CUU/123"
    page = render_coversheet(CASE, dpi=300, qr_text=url)
    image = scan(page, Degradation(scan_dpi=200, rotate=90, skew_deg=2.0, jpeg_quality=75), seed=3)
    finding = detect_case_qr(image, dpi=200)
    assert finding is not None
    assert finding.text == url and not finding.valid and finding.case_id is None


def test_finding_must_be_consistent():
    with pytest.raises(ValueError):
        QrFinding(text=str(CASE), case_id=None, valid=True)
    assert QrFinding.from_text(" 000.00.01.h56-181010-0001 ").case_id == CASE
    assert not QrFinding.from_text("000.00.01.H56-181310-0001").valid  # month 13


# ------------------------------------------------------------------ splitting a stack


def _sheet(case: CaseId) -> QrFinding:
    return QrFinding.from_text(str(case))


def test_split_at_each_sheet_and_drop_the_sheets():
    split = split_stack([_sheet(CASE), None, None, _sheet(OTHER), None], default_case=None)
    assert split.segments == [Segment(CASE, [1, 2], 0), Segment(OTHER, [4], 3)]
    assert split.issues == []


def test_no_sheet_means_one_segment():
    assert split_stack([None] * 3, default_case=CASE).segments == [Segment(CASE, [0, 1, 2], None)]
    unassigned = split_stack([None] * 3, default_case=None)
    assert unassigned.segments == [Segment(None, [0, 1, 2], None)]
    assert unassigned.segments[0].needs_case_id


def test_leading_pages_go_to_default_case():
    split = split_stack([None, None, _sheet(OTHER), None], default_case=CASE)
    assert split.segments == [Segment(CASE, [0, 1], None), Segment(OTHER, [3], 2)]


def test_leading_pages_without_default_case_need_one():
    split = split_stack([None, _sheet(OTHER), None], default_case=None)
    assert split.segments[0] == Segment(None, [0], None)
    assert [i.kind for i in split.warnings] == ["unassigned_pages"]
    assert "chưa có mã hồ sơ" in split.warnings[0].message_vi


def test_invalid_qr_is_reported_and_kept_as_a_page():
    bad = QrFinding.from_text("https://example.vn/x")
    split = split_stack([_sheet(CASE), None, bad, None], default_case=None)
    assert split.segments == [Segment(CASE, [1, 2, 3], 0)]
    [issue] = split.invalid_qr
    assert (issue.page, issue.kind, issue.text) == (2, "invalid_qr", "https://example.vn/x")
    assert "Trang 3" in issue.message_vi and "Page 3" in issue.message_en
    assert "không phải mã hồ sơ" in issue.message_vi and "not a case ID" in issue.message_en


def test_unreadable_qr_is_reported():
    split = split_stack([_sheet(CASE), QrFinding("", None, False)], default_case=None)
    assert split.segments == [Segment(CASE, [1], 0)]
    assert [i.kind for i in split.invalid_qr] == ["unreadable_qr"]


def test_two_sheets_in_a_row_leave_a_reported_empty_segment():
    split = split_stack([_sheet(CASE), _sheet(OTHER), None, _sheet(THIRD)], default_case=None)
    assert split.segments == [Segment(CASE, [], 0), Segment(OTHER, [2], 1), Segment(THIRD, [], 3)]
    assert split.empty_segments == [Segment(CASE, [], 0), Segment(THIRD, [], 3)]
    assert [(i.kind, i.page) for i in split.warnings] == [("empty_segment", 0), ("empty_segment", 3)]


def test_sheet_then_receipt_of_the_same_case_is_one_dossier():
    split = split_stack([_sheet(CASE), _sheet(CASE), None, None], default_case=None)
    assert split.segments == [Segment(CASE, [2, 3], 0)]
    assert [i.kind for i in split.warnings] == ["repeated_case"]


def test_empty_stack():
    split = split_stack([], default_case=CASE)
    assert split.segments == [] and split.issues == []
