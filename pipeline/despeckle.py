"""White out the dust on a 1-bit page while keeping punctuation and diacritic dots."""
from __future__ import annotations

import cv2
import numpy as np

MM_PER_INCH = 25.4

# --- speckle -----------------------------------------------------------------------------------
# Connected components under this area (mm²) are speckle candidates: the synthetic speckle is
# ≤ 0.4 mm² after blur, but a 13 pt dot-below (dấu nặng), full stop or hyphen is 0.2–0.4 mm², so
# size alone cannot decide …
SPECKLE_MAX_AREA_MM2 = 0.6
# … and a small component is kept when its box lies within this distance of a letter-sized one,
# or when another small mark sits beside it on the same line (rows of dots or hyphens "……", "-----").
# Measured on 8 synthetic pages per profile (CER clean / office / rough): keep-distance 3 mm:
# 1.14 / 1.96 / 4.98 %; 1.5 mm: 2.23 / 2.50 / 3.13 % (line-initial hyphens and dash rows lost).
# With the same-line rule, on the upright pages: 2 mm: clean 1.27 % (the hyphen in "- Văn phòng"
# sits 2.1 mm from the V), rough 3.44 %; 2.5 mm: clean 1.16 %, rough 3.76 %.
SPECKLE_KEEP_NEAR_MM = 2.5
SPECKLE_ROW_MM = 1.0        # "same line": centres within this height …
SPECKLE_ROW_REACH_MM = 2.5  # … and within this distance left or right

# Issue 14, rough pages: dust near a word is read as punctuation glued to it ("phủ. ban.", "Nghị:").
# A small round dot (at most SPECKLE_DOT_MAX_MM across) near letters is kept only where a full stop,
# a colon or a diacritic dot sits: bottom within SPECKLE_BASELINE_MM of the bottom of a letter at
# most SPECKLE_DOT_GAP_MM to its left, or right above/below a letter or another small mark.
# Measured with bench/ocr/quick_cer.py (CER %, 8 pages, before -> after): rough 2.41 -> 1.30, office
# 0.57 -> 0.38, office-stamp 0.66 -> 0.45, seal 1.22 -> 0.70, clean 0.31 and phone (3) 0.68 unchanged.
# Tried and worse: a gap of 0.6 mm (clean 0.35, rough 1.32: real full stops lost); keeping dots
# above a letter only over a narrow stem (clean 0.64, rough 2.94: a serif i's foot is wide).
SPECKLE_PLACE_DOTS = True
SPECKLE_DOT_MAX_MM = 1.0
SPECKLE_DOT_GAP_MM = 1.0
SPECKLE_DOT_ABOVE_MM = 1.5  # above or below a letter (i's dot, dấu nặng)
SPECKLE_DOT_PAIR_MM = 2.5   # above or below another small mark (colon, semicolon: an x-height apart)
SPECKLE_BASELINE_MM = 0.35
SPECKLE_BASELINE_REACH_MM = 6.0
SPECKLE_LETTER_MAX_MM = 10.0  # the baseline is that of a letter this far to the left


def despeckle(binary: np.ndarray, *, dpi: float,
              place_dots: bool = SPECKLE_PLACE_DOTS) -> tuple[np.ndarray, float | None]:
    """White out small isolated dots that are not near any letter (the white page stays 255).

    With ``place_dots``, a round dot near letters must also sit where punctuation or a diacritic
    dot sits (see ``_placed_like_a_mark``); an enlarged low-resolution page is cleaned without that
    rule (its dots are interpolated blurs: on the real line crops "1.4." lost its full stop).

    Components are found as outer contours (~8x cheaper than labelling the page with statistics);
    a component's pixel count is its contour's enclosed area plus half its boundary (Pick's
    theorem on the pixel centres), exact for a solid mark.

    Returns the cleaned page and the upper-quartile height in pixels of the marks that are not small
    (the page's typical tall letter; None on a page without such marks).
    """
    ink = (binary == 0).astype(np.uint8)
    contours, _ = cv2.findContours(ink, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return binary, None
    px_per_mm = dpi / MM_PER_INCH
    max_area = SPECKLE_MAX_AREA_MM2 * px_per_mm ** 2
    boxes = np.array([cv2.boundingRect(c) for c in contours], np.int64).reshape(-1, 4)
    # Only a mark whose box could hold fewer than max_area pixels … or a thin one is a candidate.
    maybe = np.flatnonzero(np.minimum(boxes[:, 2], boxes[:, 3]) * 1.0 < max_area)
    small = np.zeros(len(contours), bool)
    for i in maybe:
        c = contours[i]
        small[i] = _pixel_count(c) < max_area
    # The upper quartile: the median jumps between the x-height and the taller letters from page to page.
    letter_px = float(np.percentile(boxes[~small, 3], 75)) if not small.all() else None
    if not small.any():
        return binary, letter_px
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2] - 1, y0 + boxes[:, 3] - 1
    centres = np.stack([(x0 + x1) / 2, (y0 + y1) / 2], axis=1)
    # Where letters are: the ink without the small marks, on a ~4x smaller map dilated by the keep distance.
    small_ids = np.flatnonzero(small)
    letters = ink * 255
    cv2.drawContours(letters, [contours[i] for i in small_ids], -1, 0, thickness=cv2.FILLED)
    scale = 0.25
    # INTER_AREA keeps any letter pixel as a non-zero cell of the small map.
    near = cv2.resize(letters, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    radius = max(1, round(SPECKLE_KEEP_NEAR_MM * px_per_mm * scale))
    near = cv2.dilate(near, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    # Look at the box's corners as well as its centre: a long thin mark (hyphen, comma) can have
    # its centre farther from the next letter than its end.
    sx0, sy0, sx1, sy1 = x0[small_ids], y0[small_ids], x1[small_ids], y1[small_ids]
    is_near = np.zeros(len(small_ids), bool)
    for px, py in ((centres[small_ids, 0], centres[small_ids, 1]), (sx0, sy0), (sx1, sy0), (sx0, sy1), (sx1, sy1)):
        cx = np.clip((px * scale).astype(int), 0, near.shape[1] - 1)
        cy = np.clip((py * scale).astype(int), 0, near.shape[0] - 1)
        is_near |= near[cy, cx] > 0
    if place_dots:
        # only the marks the distance rule keeps need a look (dust far from letters goes anyway)
        is_near[is_near] = _placed_like_a_mark(boxes, small, small_ids[is_near], contours, px_per_mm=px_per_mm)
    is_near |= _has_row_neighbour(centres, small, px_per_mm=px_per_mm)[small_ids]
    drop = small_ids[~is_near]
    if not len(drop):
        return binary, letter_px
    out = binary.copy()
    cv2.drawContours(out, [contours[i] for i in drop], -1, 255, thickness=cv2.FILLED)
    return out, letter_px


def _pixel_count(contour: np.ndarray) -> float:
    """Pixels of a solid mark from its outer contour (CHAIN_APPROX_NONE): Pick's theorem on the pixel centres."""
    return cv2.contourArea(contour) + len(contour) / 2 + 1


def _placed_like_a_mark(boxes: np.ndarray, small: np.ndarray, small_ids: np.ndarray, contours, *,
                        px_per_mm: float) -> np.ndarray:
    """For each small mark: True unless it is a round dot placed where no punctuation or diacritic sits.

    A round dot is real when its bottom is on the baseline of a letter just left of it (full stop,
    the lower dot of a colon), when it sits right above or below a letter (the dot of an i, dấu nặng)
    or another small mark (a colon's upper dot, an accent over a circumflex). Dust lands anywhere:
    at mid-height after a word, between lines, in the gap between two words.
    """
    keep = np.ones(len(small_ids), bool)
    x0, y0, w, h = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    x1, y1 = x0 + w - 1, y0 + h - 1
    dot_max = SPECKLE_DOT_MAX_MM * px_per_mm
    # letters: not small, and not a frame, a rule or a scanner edge (those span whole lines)
    big = ~small & (h <= SPECKLE_LETTER_MAX_MM * px_per_mm) & (w <= 4 * SPECKLE_LETTER_MAX_MM * px_per_mm)
    bx0, by0, bx1, by1 = x0[big], y0[big], x1[big], y1[big]
    sx0, sy0, sx1, sy1 = x0[small], y0[small], x1[small], y1[small]
    gap_h = SPECKLE_DOT_GAP_MM * px_per_mm
    gap_line = SPECKLE_BASELINE_REACH_MM * px_per_mm
    gap_v = SPECKLE_DOT_ABOVE_MM * px_per_mm
    gap_pair = SPECKLE_DOT_PAIR_MM * px_per_mm
    base_tol = max(2.0, SPECKLE_BASELINE_MM * px_per_mm)
    margin = max(1.0, 0.2 * px_per_mm)
    for k, i in enumerate(small_ids):
        wi, hi = w[i], h[i]
        if max(wi, hi) > dot_max or abs(wi - hi) > max(1, 0.34 * max(wi, hi)):
            continue  # not a round dot: hyphen, comma, accent, quote
        area = _pixel_count(contours[i])
        if max(wi, hi) > 3 and area < 0.55 * wi * hi:
            continue
        # a letter just left of it, and its bottom on the baseline of the letters before it (full
        # stop, colon's lower dot; "ký." and "(H)." end in a letter below the baseline)
        left = (bx1 < x1[i]) & (by0 < y0[i]) & (by1 >= y0[i])
        if (np.any(left & (x0[i] - bx1 <= gap_h))
                and np.any(left & (x0[i] - bx1 <= gap_line) & (np.abs(by1 - y1[i]) <= base_tol))):
            continue
        # a letter or another small mark right above or below it
        over = lambda ax0, ax1, i=i: (ax0 <= x1[i] + margin) & (ax1 >= x0[i] - margin)  # noqa: E731
        if np.any(over(bx0, bx1) & ((by0 - y1[i]) <= gap_v) & ((y0[i] - by1) <= gap_v)):
            continue
        others = over(sx0, sx1) & (((sy0 - y1[i]) > 0) & ((sy0 - y1[i]) <= gap_pair)
                                   | ((y0[i] - sy1) > 0) & ((y0[i] - sy1) <= gap_pair))
        if np.any(others):
            continue
        keep[k] = False
    return keep


def _has_row_neighbour(centroids: np.ndarray, small: np.ndarray, *, px_per_mm: float) -> np.ndarray:
    """For each component: is another small one beside it on the same text line (a dotted leader)?"""
    cell_h = SPECKLE_ROW_MM * px_per_mm
    cell_w = SPECKLE_ROW_REACH_MM * px_per_mm / 2
    gx = (centroids[:, 0] / cell_w).astype(np.int64)
    gy = (centroids[:, 1] / cell_h).astype(np.int64)
    counts = np.zeros((gy.max() + 1, gx.max() + 3), np.float32)
    np.add.at(counts, (gy[small], gx[small] + 1), 1.0)
    # Sum over the cell and one cell left and right; a component counts itself once.
    beside = counts[:, :-2] + counts[:, 1:-1] + counts[:, 2:]
    result = np.zeros(len(centroids), bool)
    result[small] = beside[gy[small], gx[small]] >= 2
    return result
