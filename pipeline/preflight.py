"""Preflight one scanned page in a few tens of milliseconds: is it good enough to keep, or rescan it?

Every check runs on a small copy of the page (100 dpi, 150 dpi for blur), so a 300-dpi A4 costs
~30 ms, and the operator gets the verdicts while the citizen is still at the counter. The function
only measures and returns issues; the flow decides what to do with them (warn, drop a blank back,
refuse with ``--strict``).

Thresholds are module constants calibrated on the synthetic pages of /work/shared/bench/synth_scans.py
(profiles clean/office/rough, 300 dpi); each says which measurement it comes from. Override them per
call with :class:`PreflightThresholds`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from models import PreflightIssue, Severity
from pipeline.background import find_border, flatten_background

# --- resolution: the digitisation rules (Circular 02/2019/TT-BNV, 05/2025/TT-BNV) ask for 200 dpi;
# below 100 dpi 13 pt Vietnamese diacritics are 2–3 px tall and OCR cannot separate them.
MIN_DPI = 200.0
RESCAN_DPI = 100.0

# --- blur: share of edge contrast lost to a further 9-px box blur, near ink, on a 150-dpi copy
# (Crete et al.'s no-reference blur metric; 1 = crisp, 0 = fully blurred). Synthetic pages: clean
# 0.91, office and rough 0.83–0.85 (they already carry a 3x3 blur); the same office/rough pages with
# a further Gaussian blur of sigma 1.5 / 2 / 2.5 / 3.5 px at 300 dpi: 0.75 / 0.68 / 0.61 / 0.46.
# The threshold flags sigma ≥ ~2 px (0.17 mm), where 13 pt diacritics start to merge.
BLUR_MIN_SHARPNESS = 0.70

# --- darkness and contrast: paper level = 90th percentile of the page (inside the scanner border),
# ink level = 1st percentile. Synthetic pages: paper 205–235, contrast ≥ 190. A page scanned with
# the lid open or a dark photocopy has paper below ~120; faded ink or a washed-out scan has less than
# ~70 between ink and paper, where Otsu starts to merge ink with paper noise.
TOO_DARK_PAPER_LEVEL = 120.0
MIN_CONTRAST = 70.0

# --- blank: share of the page covered by ink blobs of at least BLANK_MIN_BLOB_MM2. Synthetic rough
# speckle (1500 dots, ≤ 0.35 mm²) and sensor noise leave < 0.003 %; a page holding only one short line
# ("Trang 2") is ~0.03 %, a full text page 3–6 %.
INK_RATIO = 0.6             # ink = darker than 60 % of the local paper tone
FAINT_INK_RATIO = 0.82      # faded ink (~75 %) still counts; show-through from the front (~85–95 %) not
BLANK_MIN_BLOB_MM2 = 0.6
BLANK_MAX_INK_SHARE = 0.00005

# --- cut off: letter-sized blobs touching a 1 mm strip along an edge of the paper (inside any
# dark scanner band). A good page with normal margins has none; speckle is too small to count; long
# thin lines along the edge (the paper's own edge shadow) are ignored.
EDGE_STRIP_MM = 1.0
CUT_OFF_MIN_BLOBS = 3
EDGE_LINE_SHARE = 0.4       # a blob longer than this share of the edge is a line, not text

WORK_DPI = 100.0
BLUR_DPI = 150.0
MM_PER_INCH = 25.4


@dataclass(frozen=True)
class PreflightThresholds:
    """Every limit the checks use; the defaults are the calibrated module constants."""

    min_dpi: float = MIN_DPI
    rescan_dpi: float = RESCAN_DPI
    blur_min_sharpness: float = BLUR_MIN_SHARPNESS
    too_dark_paper_level: float = TOO_DARK_PAPER_LEVEL
    min_contrast: float = MIN_CONTRAST
    blank_max_ink_share: float = BLANK_MAX_INK_SHARE
    cut_off_min_blobs: int = CUT_OFF_MIN_BLOBS


@dataclass
class PreflightResult:
    """The verdicts on one page, whether it is a blank back, and the raw measurements behind them."""

    issues: list[PreflightIssue] = field(default_factory=list)
    blank: bool = False
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def needs_rescan(self) -> bool:
        return any(i.severity is Severity.RESCAN for i in self.issues)


def preflight(
    image: np.ndarray, *, dpi: float, dpi_estimated: bool = False,
    thresholds: PreflightThresholds | None = None, photo_dpi: float | None = None,
) -> PreflightResult:
    """Check one page (grey uint8 or BGR) for resolution, blur, darkness, blankness and cut-off text.

    ``photo_dpi``: the page is a rectified phone photo (enlarged to ``dpi``); the resolution verdict
    is about the sheet's resolution in the photo.
    """
    if dpi <= 0:
        raise ValueError(f"dpi must be positive, got {dpi}")
    t = thresholds or PreflightThresholds()
    result = PreflightResult(metrics={"dpi": float(dpi)})
    issues = result.issues

    issues.extend(resolution_issues(dpi if photo_dpi is None else photo_dpi, t))
    if dpi_estimated:
        issues.append(_issue("dpi_estimated", Severity.INFO, dpi,
                             f"Tệp không ghi độ phân giải, ước tính {dpi:.0f} dpi",
                             f"the file records no resolution; {dpi:.0f} dpi was estimated"))

    scale = min(1.0, WORK_DPI / dpi)
    small = _grey(_resize(image, scale))
    work_dpi = dpi * scale
    top, bottom, left, right = find_border(small, dpi=work_dpi)
    h, w = small.shape
    page = small[top:h - bottom, left:w - right]
    if page.size == 0:  # all border: nothing but a dark scanner lid
        page = small
    flat = flatten_background(page, dpi=work_dpi)
    ink, blobs = _ink_blobs(flat, dpi=work_dpi, ratio=INK_RATIO)
    faint, _ = _ink_blobs(flat, dpi=work_dpi, ratio=FAINT_INK_RATIO)

    # Blank means no ink at all, not even faint: a faded page is "too light", not blank.
    ink_share = float(faint.sum()) / faint.size
    result.metrics["ink_share"] = ink_share
    result.metrics["border_px"] = float(max(top, bottom, left, right) / scale)
    if ink_share <= t.blank_max_ink_share:
        result.blank = True
        issues.append(_issue("blank", Severity.INFO, ink_share,
                             "Trang trắng (mặt sau để trống), sẽ được bỏ qua",
                             "blank page (an empty back side); it will be skipped"))
        return result  # contrast, blur and cut-off mean nothing without ink

    paper = float(np.percentile(page[::2, ::2], 90))
    # Ink level from the ink itself (a percentile of the whole page would land on paper when a page
    # holds a few lines only); the faint mask also catches faded ink.
    ink_level = float(np.percentile(page[faint], 10))
    contrast = paper - ink_level
    result.metrics.update(paper_level=paper, ink_level=ink_level, contrast=contrast)
    if paper < t.too_dark_paper_level:
        issues.append(_issue("too_dark", Severity.RESCAN, float(paper),
                             "Trang quá tối, hãy quét lại (giảm độ tối hoặc đóng nắp máy quét)",
                             f"page too dark (paper level {paper:.0f}/255); rescan lighter"))
    elif contrast < t.min_contrast:
        issues.append(_issue("too_light", Severity.RESCAN, contrast,
                             "Chữ quá mờ nhạt, hãy quét lại đậm hơn",
                             f"ink too faint (contrast {contrast:.0f}/255); rescan darker"))

    sharpness = _sharpness(image, dpi=dpi, border=(top / scale, bottom / scale, left / scale, right / scale))
    result.metrics["sharpness"] = sharpness
    if sharpness < t.blur_min_sharpness:
        issues.append(_issue("blurred", Severity.RESCAN, sharpness,
                             "Trang bị mờ, hãy quét lại",
                             f"page is blurred (edge sharpness {sharpness:.2f} < {t.blur_min_sharpness:.2f})"))

    touching = _edge_blobs(blobs, shape=page.shape, dpi=work_dpi)
    result.metrics["edge_blobs"] = float(touching)
    if touching >= t.cut_off_min_blobs:
        issues.append(_issue("cut_off", Severity.WARNING, float(touching),
                             "Nội dung bị cắt ở mép trang, hãy đặt lại giấy và quét lại",
                             f"text touches the page edge ({touching} marks); the page may be cut off"))
    return result


def resolution_issues(dpi: float, t: PreflightThresholds) -> list[PreflightIssue]:
    """RESCAN under ``rescan_dpi``, WARNING under ``min_dpi``."""
    if dpi < t.rescan_dpi:
        return [_issue("low_resolution", Severity.RESCAN, dpi,
                       f"Độ phân giải {dpi:.0f} dpi quá thấp, hãy quét lại ở 200 dpi trở lên",
                       f"resolution {dpi:.0f} dpi is too low to read; rescan at 200 dpi or more")]
    if dpi < t.min_dpi:
        return [_issue("low_resolution", Severity.WARNING, dpi,
                       f"Độ phân giải {dpi:.0f} dpi thấp hơn 200 dpi theo quy định số hóa",
                       f"resolution {dpi:.0f} dpi is below the 200 dpi the digitisation rules ask for")]
    return []


# --- measurements --------------------------------------------------------------------------------

def _ink_blobs(flat: np.ndarray, *, dpi: float, ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """Ink mask of letter-sized blobs (speckle removed) and their stats rows (x, y, w, h, area)."""
    dark = (flat < 255 * ratio).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(dark, connectivity=8)
    min_area = BLANK_MIN_BLOB_MM2 * (dpi / MM_PER_INCH) ** 2
    keep = stats[:, cv2.CC_STAT_AREA] >= min_area
    keep[0] = False
    return keep[labels], stats[keep]


def _edge_blobs(blobs: np.ndarray, *, shape: tuple[int, int], dpi: float) -> int:
    """The largest number of blobs touching one edge strip, ignoring long lines along that edge."""
    h, w = shape
    strip = max(1, int(round(EDGE_STRIP_MM / MM_PER_INCH * dpi)))
    x, y = blobs[:, cv2.CC_STAT_LEFT], blobs[:, cv2.CC_STAT_TOP]
    bw, bh = blobs[:, cv2.CC_STAT_WIDTH], blobs[:, cv2.CC_STAT_HEIGHT]
    horizontal_line = bw > EDGE_LINE_SHARE * w
    vertical_line = bh > EDGE_LINE_SHARE * h
    counts = [
        int(np.sum((y < strip) & ~horizontal_line)),
        int(np.sum((y + bh > h - strip) & ~horizontal_line)),
        int(np.sum((x < strip) & ~vertical_line)),
        int(np.sum((x + bw > w - strip) & ~vertical_line)),
    ]
    return max(counts)


def _sharpness(image: np.ndarray, *, dpi: float, border: tuple[float, float, float, float]) -> float:
    """Share of the ink edges' contrast that a further blur would destroy (Crete et al. 2007), 0–1.

    Re-blurring a sharp page changes it a lot, a blurred page hardly at all. Being a ratio, the
    measure does not depend on contrast or on how much text the page holds; it is taken only near
    ink so paper noise does not pass for sharpness.
    """
    scale = min(1.0, BLUR_DPI / dpi)
    grey = _grey(_resize(image, scale))
    h, w = grey.shape
    top, bottom, left, right = (int(round(b * scale)) + 2 for b in border)
    grey = grey[top:max(top + 1, h - bottom), left:max(left + 1, w - right)]
    otsu, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    ink = (grey < otsu).astype(np.uint8)
    if int(ink.sum()) < 100:
        return 1.0  # too little ink to judge; blank pages are reported separately
    near_ink = cv2.dilate(ink, np.ones((5, 5), np.uint8)) > 0
    g = grey.astype(np.float32)
    shares = []
    for axis, kernel in ((1, (9, 1)), (0, (1, 9))):
        blurred = cv2.blur(g, kernel)
        d_sharp = np.abs(np.diff(g, axis=axis))
        d_blur = np.abs(np.diff(blurred, axis=axis))
        mask = near_ink[:, 1:] if axis == 1 else near_ink[1:, :]
        d_sharp, d_blur = d_sharp[mask], d_blur[mask]
        lost = np.maximum(0.0, d_sharp - d_blur).sum()
        shares.append(float(lost / max(float(d_sharp.sum()), 1.0)))
    # The blurrier direction decides: motion blur along one axis is still a rescan.
    return min(shares)


# --- helpers -------------------------------------------------------------------------------------

def _issue(code: str, severity: Severity, value: float, vi: str, en: str) -> PreflightIssue:
    return PreflightIssue(code=code, severity=severity, message_vi=vi, message_en=en,
                          value=round(float(value), 6))


def _grey(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return image
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2GRAY)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def photo_issue(dpi: float) -> PreflightIssue:
    """INFO: the page is a phone photo that was rectified; ``dpi``, the sheet's resolution in the
    photo, is estimated from its size."""
    return _issue("photo_corrected", Severity.INFO, dpi,
                  f"Ảnh chụp bằng điện thoại: đã nắn thẳng trang và làm đều ánh sáng, ước tính {dpi:.0f} dpi",
                  f"phone photo: the page was straightened and its lighting evened out; about {dpi:.0f} dpi")


def unreadable_issue(words: int, confidence: float | None) -> PreflightIssue:
    """RESCAN: the page has ink but OCR found no readable text on it."""
    conf = "–" if confidence is None else f"{confidence:.0f}%"
    return _issue("no_text", Severity.RESCAN, confidence or 0.0,
                  f"Không đọc được chữ trên trang ({words} từ, độ tin cậy {conf}), hãy quét lại",
                  f"no readable text on the page ({words} words, confidence {conf}); rescan it")
