"""The page's paper: the scanner border, colour and stamp ink, and the uneven background tone."""
from __future__ import annotations

import cv2
import numpy as np

from pipeline.orient import DESKEW_DPI  # the border is found on the skew search's ~100-dpi copy
from pipeline.raster import shrink

MM_PER_INCH = 25.4

# --- scanner border ----------------------------------------------------------------------------
# A column/row belongs to the dark scanner band when this share of its pixels is darker than half
# the paper level (a text line never comes close: ink covers < 30 % of a row even in a bold heading).
BORDER_DARK_SHARE = 0.8
BORDER_MAX_FRACTION = 0.15  # never cut more than this share of the page from one edge
BORDER_MARGIN_MM = 0.5      # the band's edge is soft (blur, JPEG ringing): take a little more

# --- colour ------------------------------------------------------------------------------------
# Chroma (max - min channel) on a smoothed ~75-dpi copy. JPEG chroma noise on grey synthetic pages
# stays below ~15, a red seal or blue ink is 60–170; a seal or signature covers > 0.1 % of an A4.
COLOUR_CHROMA = 50
COLOUR_MIN_SHARE = 0.0005
# Stamp and signature ink in the OCR image: a pixel whose chroma exceeds STAMP_CHROMA (red seal
# over paper ~90, JPEG fringes of black text < 40), within a coloured mark at least STAMP_MIN_MM
# across (a seal is ~40 mm, its star ~15 mm, a signature 20-50 mm; a 13 pt letter ~4 mm).
STAMP_CHROMA = 40
STAMP_MIN_MM = 8.0
STAMP_WORK_DPI = 50.0

# --- background ----------------------------------------------------------------------------------
BACKGROUND_DPI = 25.0          # a 25-dpi copy closed over ~5 mm sees only paper, not 13 pt text
BACKGROUND_CLOSE_MM = 5.0


def find_border(grey: np.ndarray, *, dpi: float) -> tuple[int, int, int, int]:
    """Widths in pixels (top, bottom, left, right) of the dark scanner band along each edge."""
    scale = min(1.0, DESKEW_DPI / dpi)
    small = shrink(grey, scale)
    dark = small < (paper_level(small) * 0.5)
    h, w = dark.shape
    margin = round(BORDER_MARGIN_MM / MM_PER_INCH * dpi)

    def band(share: np.ndarray, limit: int) -> int:
        # Walk in from the edge while the line is (nearly) all dark; the band must start at the edge.
        n = 0
        while n < limit and share[n] >= BORDER_DARK_SHARE:
            n += 1
        return 0 if n == 0 else round((n + 1) / scale) + margin

    rows, cols = dark.mean(axis=1), dark.mean(axis=0)
    max_h, max_w = int(h * BORDER_MAX_FRACTION), int(w * BORDER_MAX_FRACTION)
    return (band(rows, max_h), band(rows[::-1], max_h), band(cols, max_w), band(cols[::-1], max_w))


def _has_colour(bgr: np.ndarray, *, dpi: float) -> bool:
    """True when a meaningful share of the page is clearly coloured (seal, signature, photo)."""
    small = shrink(bgr, min(1.0, 75.0 / dpi))
    small = cv2.medianBlur(small, 3)  # JPEG chroma noise is pixel-sized, ink is not
    b, g, r = cv2.split(small)  # cv2 per-channel max/min: ~20x faster than numpy's over axis 2
    chroma = cv2.subtract(cv2.max(cv2.max(b, g), r), cv2.min(cv2.min(b, g), r))
    return cv2.countNonZero(cv2.compare(chroma, COLOUR_CHROMA, cv2.CMP_GT)) >= COLOUR_MIN_SHARE * chroma.size


def without_stamp_ink(bgr: np.ndarray, grey: np.ndarray, *, dpi: float) -> np.ndarray:
    """The grey page with red/blue stamp and signature ink lifted to the paper tone; black text stays.

    Seal ink over paper has a high chroma and is bright in its own channel (a red seal is ~210 in
    red), while black text, also where the seal crosses it, is dark in every channel. So inside the
    coloured marks the grey is replaced by the brightest channel: the seal turns to paper, a black
    stroke under it stays black. Only marks larger than STAMP_MIN_MM count as stamp or signature ink;
    coloured letters (a red heading) are letter-sized and are read as they are.
    """
    b, g, r = cv2.split(bgr)  # cv2 per-channel max/min: ~20x faster than numpy's over axis 2
    brightest = cv2.max(cv2.max(b, g), r)
    mask = _stamp_mask(cv2.subtract(brightest, cv2.min(cv2.min(b, g), r)), dpi=dpi)
    if mask is None:
        return grey
    return np.where(mask, cv2.max(grey, brightest), grey)


def _stamp_mask(chroma: np.ndarray, *, dpi: float) -> np.ndarray | None:
    """Full-resolution mask of the page's stamp/signature ink (None when there is none)."""
    coloured = (chroma > STAMP_CHROMA).astype(np.uint8)
    # Which coloured marks are big: components on a ~50-dpi copy, where a ring is one piece.
    scale = min(1.0, STAMP_WORK_DPI / dpi)
    small = cv2.resize(coloured * 255, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) > 0
    small = cv2.dilate(small.astype(np.uint8), np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(small, connectivity=8)
    if n <= 1:
        return None
    min_px = STAMP_MIN_MM / MM_PER_INCH * dpi * scale
    big = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]) >= min_px
    big[0] = False
    if not big.any():
        return None
    region = cv2.resize(big[labels].astype(np.uint8), (chroma.shape[1], chroma.shape[0]),
                        interpolation=cv2.INTER_NEAREST) > 0
    return region & (coloured > 0)


def paper_level(grey: np.ndarray) -> int:
    """Typical paper brightness: a high percentile, so text and a dark border do not count."""
    sample = grey[::4, ::4]
    return int(np.percentile(sample, 90))


def _fill_border(image: np.ndarray, top: int, bottom: int, left: int, right: int, *, value) -> np.ndarray:
    if not (top or bottom or left or right):
        return image
    out = image.copy()
    h, w = out.shape[:2]
    out[:top] = value
    out[h - bottom:] = value
    out[:, :left] = value
    out[:, w - right:] = value
    return out


def flatten_background(grey: np.ndarray, *, dpi: float) -> np.ndarray:
    """Divide out the uneven lamp/paper tone so one global threshold fits the whole page."""
    scale = min(1.0, BACKGROUND_DPI / dpi)
    small = shrink(grey, scale)
    k = max(3, round(BACKGROUND_CLOSE_MM / MM_PER_INCH * BACKGROUND_DPI) | 1)
    # Closing (max then min) erases dark text narrower than the kernel and leaves the paper tone.
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    background = cv2.blur(background, (k, k))
    background = cv2.resize(background, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(grey, np.maximum(background, 1), scale=255)
