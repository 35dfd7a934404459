"""Preflight verdicts on real typeset pages: each check fires on a page made to fail it, and only then."""
from __future__ import annotations


import cv2
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from models import Severity
from pipeline.preflight import PreflightThresholds, preflight

DPI = 300
FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
LINES = [
    "QUYẾT ĐỊNH về việc ban hành Kế hoạch triển khai cơ chế một cửa",
    "Điều 1. Ban hành kèm theo Quyết định này Kế hoạch số hóa hồ sơ,",
    "kết quả giải quyết thủ tục hành chính tại Bộ phận Một cửa các cấp.",
    "Điều 2. Sở Thông tin và Truyền thông chủ trì, phối hợp với các sở,",
    "ngành, Ủy ban nhân dân cấp huyện, cấp xã tổ chức thực hiện.",
]


def typeset(*, lines: int = 30, speckle: int = 300, border: bool = True, seed: int = 1) -> np.ndarray:
    """A 300-dpi A4 page of Vietnamese text scanned on an office scanner: grey paper, noise, border."""
    w, h = int(8.27 * DPI), int(11.69 * DPI)
    img = Image.new("L", (w, h), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, int(13 * DPI / 72))
    for i in range(lines):
        draw.text((int(1.2 * DPI), int(0.9 * DPI) + i * 78), LINES[i % len(LINES)], font=font, fill=0)
    rng = np.random.default_rng(seed)
    a = np.minimum(np.asarray(img, np.float32), 230.0)
    a += rng.normal(0, 8, a.shape).astype(np.float32)
    for x, y in zip(rng.integers(0, w, speckle), rng.integers(0, h, speckle)):
        cv2.circle(a, (int(x), int(y)), int(rng.integers(1, 3)), 40.0, -1)
    a = cv2.GaussianBlur(a, (3, 3), 0)
    if border:  # the dark band a flatbed leaves along the lid's edge
        a[:, :40] = 30
        a[:20, :] = 30
    return np.clip(a, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def good_page() -> np.ndarray:
    return typeset()


def codes(result) -> set[str]:
    return {i.code for i in result.issues}


def test_good_page_has_no_issues(good_page):
    result = preflight(good_page, dpi=DPI)
    assert result.issues == []
    assert not result.blank
    assert {"sharpness", "contrast", "paper_level", "ink_share", "edge_blobs"} <= result.metrics.keys()


def test_good_colour_page_has_no_issues(good_page):
    assert preflight(cv2.cvtColor(good_page, cv2.COLOR_GRAY2BGR), dpi=DPI).issues == []


def test_blurred_page_must_be_rescanned(good_page):
    result = preflight(cv2.GaussianBlur(good_page, (0, 0), 3), dpi=DPI)
    assert codes(result) == {"blurred"}
    (issue,) = result.issues
    assert issue.severity is Severity.RESCAN
    assert issue.message_vi == "Trang bị mờ, hãy quét lại"
    assert result.needs_rescan


def test_dark_page_must_be_rescanned(good_page):
    result = preflight((good_page * 0.4).astype(np.uint8), dpi=DPI)
    assert codes(result) == {"too_dark"}
    assert result.issues[0].severity is Severity.RESCAN


def test_faded_page_is_too_light_not_blank(good_page):
    faded = (255 - (255 - good_page.astype(np.float32)) * 0.25).astype(np.uint8)
    result = preflight(faded, dpi=DPI)
    assert codes(result) == {"too_light"}
    assert not result.blank


def test_blank_back_with_noise_speckle_and_border_is_blank():
    result = preflight(typeset(lines=0, speckle=1500), dpi=DPI)
    assert result.blank
    assert codes(result) == {"blank"}
    assert result.issues[0].severity is Severity.INFO


def test_page_with_one_short_line_is_not_blank():
    assert not preflight(typeset(lines=1), dpi=DPI).blank


def test_text_running_off_the_edge_is_cut_off(good_page):
    shifted = np.ascontiguousarray(good_page[:, int(1.3 * DPI):])  # the left margin and first letters gone
    result = preflight(shifted, dpi=DPI)
    assert "cut_off" in codes(result)
    assert next(i for i in result.issues if i.code == "cut_off").severity is Severity.WARNING


def test_dark_scanner_border_alone_is_not_cut_off(good_page):
    assert "cut_off" not in codes(preflight(good_page, dpi=DPI))
    assert preflight(good_page, dpi=DPI).metrics["border_px"] >= 40


@pytest.mark.parametrize(("dpi", "severity"), [(150, Severity.WARNING), (90, Severity.RESCAN)])
def test_low_resolution(good_page, dpi, severity):
    small = cv2.resize(good_page, None, fx=dpi / DPI, fy=dpi / DPI, interpolation=cv2.INTER_AREA)
    issues = [i for i in preflight(small, dpi=dpi).issues if i.code == "low_resolution"]
    assert [i.severity for i in issues] == [severity]
    assert issues[0].value == dpi


def test_estimated_dpi_is_reported(good_page):
    result = preflight(good_page, dpi=DPI, dpi_estimated=True)
    assert [(i.code, i.severity) for i in result.issues] == [("dpi_estimated", Severity.INFO)]


def test_thresholds_can_be_overridden(good_page):
    strict = PreflightThresholds(min_dpi=400, blur_min_sharpness=0.99)
    assert codes(preflight(good_page, dpi=DPI, thresholds=strict)) == {"low_resolution", "blurred"}


def test_issues_serialise_with_both_messages(good_page):
    d = preflight(cv2.GaussianBlur(good_page, (0, 0), 3), dpi=DPI).issues[0].to_dict()
    assert d["severity"] == "rescan" and d["message_vi"] and d["message_en"] and d["value"] > 0
