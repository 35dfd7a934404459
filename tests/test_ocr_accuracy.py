"""Where counters lose text: under a red seal, on phone photos, on pages that read as nothing.

Every image is made here (no shared data): a typeset page, a seal drawn over it, a photo of it
warped onto a desk. Few Tesseract calls: one per test at most, except the strict/no-text pair.
"""
from __future__ import annotations

import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from cli.documents import _print_document
from models import PageNeedsRescan
from pipeline import camera, clean, ocr, raster
from pipeline.document import check_pages, process_document
from pipeline.sample import SAMPLE_PAGES, degrade, typeset_page

DPI = 300


def _words(text: str) -> list[str]:
    return [w.strip(".,;:()") for w in unicodedata.normalize("NFC", text).split() if len(w.strip(".,;:()")) > 2]


def _seal(rgb: np.ndarray, centre: tuple[int, int], radius: int, *, alpha: float = 0.8) -> np.ndarray:
    """A red seal as a counter's ink pad leaves it (ring, inner ring, star), over the page."""
    ink = np.zeros(rgb.shape[:2], np.uint8)
    cx, cy = centre
    cv2.circle(ink, centre, radius, 255, 12)
    cv2.circle(ink, centre, int(radius * 0.72), 255, 4)
    pts = [(int(cx + radius * (0.3 if k % 2 == 0 else 0.12) * np.cos(np.pi / 2 + k * np.pi / 5)),
            int(cy - radius * (0.3 if k % 2 == 0 else 0.12) * np.sin(np.pi / 2 + k * np.pi / 5))) for k in range(10)]
    cv2.fillPoly(ink, [np.array(pts, np.int32)], 255)
    a = (ink.astype(np.float32) / 255 * alpha)[..., None]
    red = np.array([200.0, 30.0, 40.0])  # RGB
    out = rgb.astype(np.float32) * (1 - a) + np.minimum(rgb.astype(np.float32), red) * a
    return np.clip(out, 0, 255).astype(np.uint8)


def test_black_text_crossed_by_a_red_seal_is_read(tmp_path):
    page = np.asarray(degrade(typeset_page(SAMPLE_PAGES[1], dpi=DPI), seed=5))
    page = page[: int(0.42 * page.shape[0])]  # the text block only: a cheaper OCR
    rgb = np.dstack([page] * 3)
    # The seal sits on lines 3–8, as a seal laps over the last lines and the signature block.
    h, w = page.shape
    centre, radius = (int(0.55 * w), int(0.62 * h)), int(0.8 * DPI)
    stamped = _seal(rgb, centre, radius)
    path = tmp_path / "seal.jpg"
    Image.fromarray(stamped).save(path, quality=85, dpi=(DPI, DPI))

    cleaned = clean.clean_page(path, dpi=DPI, workdir=tmp_path, stem="seal", detect_orientation=False)
    text = ocr.recognise(cleaned.ocr_image, dpi=cleaned.dpi).text
    # The words of the lines the ring crosses (every word of SAMPLE_PAGES[1] lines 3-8).
    covered = [w for line in SAMPLE_PAGES[1][3:8] for w in _words(line)]
    found = set(_words(text))
    missing = [w for w in covered if w not in found]
    assert len(missing) <= 0.1 * len(covered), f"lost under the seal: {missing}"
    # The colour page (for the PDF) still carries the seal in red.
    colour = cv2.imread(str(cleaned.colour_image))
    b, g, r = (colour[..., i].astype(int) for i in range(3))
    assert np.mean((r - g > 80) & (r > 150)) > 0.003


def test_stamp_ink_is_lifted_but_red_letters_are_not():
    """Only big coloured marks (a seal, a signature) leave the OCR image; a red word is read as it is."""
    grey = np.full((400, 800), 230, np.uint8)
    rgb = np.dstack([grey] * 3)
    cv2.circle(rgb, (200, 200), 150, (40, 30, 200), 10)        # BGR red ring, 25 mm across at 300 dpi
    cv2.putText(rgb, "DO", (550, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.2, (40, 30, 200), 3)  # ~4 mm red letters
    cv2.line(rgb, (20, 200), (780, 200), (0, 0, 0), 3)           # a black stroke crossing the ring
    grey = cv2.cvtColor(rgb, cv2.COLOR_BGR2GRAY)
    assert grey[200 - 150 + 2, 200] < 110                         # the ring is mid-grey in the plain grey
    out = clean.without_stamp_ink(rgb, grey, dpi=DPI)
    assert out[200 - 150 + 2, 200] >= 195                         # the ring's top: paper-light now
    assert out[200, 50] < 60 and out[200, 200 + 150] < 60        # black line, also where it crosses the ring
    letters = (slice(85, 125), slice(545, 610))
    assert (out[letters] < 150).sum() == (grey[letters] < 150).sum()  # the red letters untouched


def _photo(page: np.ndarray, corners: np.ndarray, size: tuple[int, int], *, desk: int = 70) -> np.ndarray:
    """The page photographed on a desk: warped to ``corners`` (TL, TR, BR, BL), side light, soft focus."""
    h, w = page.shape[:2]
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    m = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    out = cv2.warpPerspective(page.astype(np.float32), m, size, borderValue=float(desk))
    xx = np.linspace(0, 1, size[0], dtype=np.float32)[None, :]
    out = out * (1.0 - 0.3 * xx)  # darker towards the right: a window on the left
    return np.clip(cv2.GaussianBlur(out, (3, 3), 0.7), 0, 255).astype(np.uint8)


def test_a_perspective_photo_is_found_and_rectified_to_a4_at_its_real_resolution():
    page_dpi = 100  # the page as the phone resolves it: 827 x 1169 px for A4
    page = np.asarray(typeset_page(SAMPLE_PAGES[0], dpi=page_dpi))
    corners = np.float32([[130, 90], [960, 140], [1000, 1300], [95, 1250]])
    photo = _photo(page, corners, (1100, 1400))

    found = camera.find_page(photo)
    assert found is not None
    assert np.abs(found.corners - corners).max() < 12  # ±12 px of 1400, i.e. ~0.5 mm on the page
    # Estimated resolution: the sheet is 830–905 px wide and 1110–1160 px tall in the photo, ~100–107 dpi.
    assert 95 <= found.photo_dpi <= 112
    assert found.dpi == camera.PHOTO_TARGET_DPI  # rectified straight to the resolution Tesseract likes
    assert found.height / found.width == pytest.approx(297 / 210, rel=0.01)

    flat = camera.rectify(photo, found)
    assert flat.shape == (found.height, found.width)
    # Lighting evened out: the paper on the left and on the right has the same tone now.
    left, right = flat[:, : flat.shape[1] // 8], flat[:, -flat.shape[1] // 8:]
    assert abs(np.percentile(left, 90) - np.percentile(right, 90)) < 8
    # Lines are level again: the page's own skew search finds (almost) nothing left to correct.
    binary = raster.binarise(clean.flatten_background(flat, dpi=found.dpi))
    assert abs(clean.measure_skew(binary, dpi=found.dpi)) < 0.6


def test_a_scan_with_a_dark_border_is_not_taken_for_a_photo():
    page = np.asarray(degrade(typeset_page(SAMPLE_PAGES[0], dpi=100), seed=2)).copy()
    page[:, :40] = 30   # the dark band an open scanner lid leaves
    page[:20, :] = 30
    assert camera.find_page(page) is None


def test_preflight_judges_the_rectified_photo_not_its_72_dpi_header(tmp_path):
    page = np.asarray(typeset_page(SAMPLE_PAGES[0], dpi=150))  # 1240 x 1754 px
    corners = np.float32([[160, 120], [1420, 170], [1470, 1960], [110, 1900]])
    photo = _photo(page, corners, (1600, 2100), desk=60)
    path = tmp_path / "phone.jpg"
    Image.fromarray(photo).save(path, quality=85, dpi=(72, 72))  # as phones write it

    [outcome] = check_pages([path], workdir=tmp_path / "w", jobs=1)
    report = outcome.report
    codes = {i.code: i for i in report.issues}
    assert report.dpi == camera.PHOTO_TARGET_DPI  # rectified and enlarged, not 72
    assert 140 <= codes["photo_corrected"].value <= 170  # the sheet's real resolution in the photo
    # Judged on that: under 200 dpi is a warning, not a rescan; sharp and not cut off once straightened.
    assert codes["low_resolution"].severity.value == "warning"
    assert not report.needs_rescan, [i.message_en for i in report.issues]
    assert report.height / report.width == pytest.approx(297 / 210, rel=0.01)
    assert outcome.raw.dpi == report.dpi or abs(outcome.raw.dpi - report.dpi) < 0.1  # clean/OCR get the same page


@pytest.fixture(scope="module")
def scribbles(tmp_path_factory) -> Path:
    """A page with plenty of ink and no letters: pen scribbles (what a too-dark photo or a smudge reads like)."""
    rng = np.random.default_rng(3)
    img = np.full((1754, 1240), 235, np.uint8)
    for _ in range(60):
        pts = np.cumsum(rng.normal(0, 25, (12, 2)), axis=0) + rng.uniform([150, 150], [1090, 1600])
        cv2.polylines(img, [pts.astype(np.int32)], False, 20, 3, cv2.LINE_AA)
    path = tmp_path_factory.mktemp("scribbles") / "scribbles.png"
    Image.fromarray(img).save(path, dpi=(150, 150))
    return path


def test_a_page_with_ink_but_no_readable_text_gets_a_rescan_verdict_and_no_tick(tmp_path, scribbles, capsys):
    result = process_document([scribbles], workdir=tmp_path / "w", jobs=1)
    [page] = result.report.pages
    assert not page.blank  # preflight sees ink: it is not an empty back
    no_text = [i for i in page.issues if i.code == "no_text"]
    assert no_text and no_text[0].severity.value == "rescan"
    assert "không đọc được chữ trên trang" in no_text[0].message_vi.lower()
    assert "no readable text on the page" in no_text[0].message_en

    report = result.report.to_dict() | {"status": "stored", "page_count": 1}
    _print_document(report)
    out = capsys.readouterr().out
    assert "✓" not in out
    assert "quét lại" in out and "no readable text" in out


def test_strict_refuses_a_page_with_no_readable_text(tmp_path, scribbles):
    with pytest.raises(PageNeedsRescan) as caught:
        process_document([scribbles], workdir=tmp_path / "w", jobs=1, strict=True, out_pdf=tmp_path / "o.pdf")
    assert caught.value.pages == [1]
    assert "no readable text" in caught.value.message_en
    assert not (tmp_path / "o.pdf").exists()


def test_intake_stores_an_unreadable_page_without_a_tick_and_strict_refuses_it(prefect_harness, data_dir,
                                                                               scribbles, capsys):
    from flows.desk import intake

    case = "000.00.01.H56-181010-0001"
    [refused] = intake(files=[str(scribbles)], case_id=case, strict=True)
    assert refused["status"] == "failed" and refused["exit_code"] == 4
    assert "no readable text" in refused["error"]

    [stored] = intake(files=[str(scribbles)], case_id=case)
    assert stored["status"] == "stored"  # the operator decides; the verdict travels with the document
    [page] = stored["pages"]
    assert any(i["code"] == "no_text" and i["severity"] == "rescan" for i in page["issues"])
    _print_document(stored)
    out = capsys.readouterr().out
    assert "✓" not in out and "cần quét lại trang 1" in out
