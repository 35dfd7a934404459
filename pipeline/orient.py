"""Which way up a page is and how far its text lines tilt: skew search, sideways test, marks' vote, OSD."""
from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np

from pipeline import ocr
from pipeline.raster import binarise, shrink, write_image

# --- orientation -------------------------------------------------------------------------------
# Tesseract OSD on a 150-dpi Otsu-binarised copy: on 16 synthetic office/rough pages it found every
# rotation with confidence 6.5–20 (at 100 dpi confidence fell to 0.6–11 and on 300 dpi it only costs
# time). Below OSD_MIN_CONFIDENCE the page is left as it is: a wrong turn is worse than none.
OSD_DPI = 150.0
OSD_MIN_CONFIDENCE = 3.0
# OSD costs as much CPU as the OCR of the page, so the caller may ask for it only on pages whose text
# lines look vertical: the best column-profile sharpness over the row-profile one (the skew search run
# both ways). Measured on 26 synthetic pages with the scanner border removed: upright 0.14–0.50,
# turned 90°/270° 4.6–6.3; from this ratio on, OSD decides.
SIDEWAYS_RATIO = 0.7
# Which way up, without Tesseract: Vietnamese puts most of its small marks above the letters (tone
# marks, circumflex, breve, i's dot) and few below (dấu nặng, commas' tails), so on an upright page
# the marks just above a letter outnumber those just below it; upside down the counts swap. Counted
# on a ~150-dpi copy (10-36 ms a page). Upright, above / below: 2.5-7.6 on the 40 synthetic pages of
# the clean, office, rough, seal (sans, 200 dpi) and 9-pt sets and the 2 real ~82-dpi letters;
# turned 180°: 0.13-0.41. From MARKS_RATIO on either way (with MARKS_MIN marks counted) the page's
# way up is taken from the marks; otherwise OSD decides a sideways page and an upright-looking one
# is left as it is. Saves OSD (~0.6 s of CPU, as much as reading the page) on every turned page and
# the second reading of an upside-down one.
ORIENT_DPI = 150.0
MARKS_RATIO = 2.0
MARKS_MIN = 30

# --- deskew ------------------------------------------------------------------------------------
# Projection-profile search on a ~100-dpi copy: at that size a 13 pt text line is ~25 px tall and
# 0.1° moves a line end by ~1.4 px, enough for the 0.3° target; a bigger copy only costs time.
DESKEW_DPI = 100.0
MAX_SKEW_DEGREES = 6.0  # counter scanners' feeders skew a few degrees; beyond this is a rotation
COARSE_STEP_DEGREES = 0.5
FINE_STEP_DEGREES = 0.05


def measure_skew(binary: np.ndarray, *, dpi: float) -> float:
    """The page's text-line tilt in degrees, counter-clockwise positive (0 when there is no text)."""
    found = _best_line_angle(_ink_points(binary, dpi=dpi))
    return 0.0 if found is None else -found[0]


def looks_sideways(binary: np.ndarray, *, dpi: float) -> bool:
    """True when the text lines run up and down the page (turned 90° or 270°), not across it.

    Horizontal lines of text give a sharply peaked row profile; on a page turned by a quarter the
    peaks appear in the column profile instead. Cheap (~the cost of the skew search), no Tesseract.
    """
    return _sideways(binary, dpi=dpi)[0]


def _sideways(binary: np.ndarray, *, dpi: float) -> tuple[bool, tuple[float, float] | None]:
    """``looks_sideways``, and the across search it made (what ``measure_skew`` finds on this page)."""
    points = _ink_points(binary, dpi=dpi)
    if points is None:
        return False, None
    xs, ys, h, w = points
    across, down = _best_line_angle(points), _best_line_angle((ys, xs, w, h))
    return across is not None and down is not None and down[1] >= SIDEWAYS_RATIO * across[1], across


def way_up(binary: np.ndarray, *, dpi: float, sideways: bool = False) -> int | None:
    """The clockwise turn (0, 90, 180, 270) that makes the page upright, told from where the small
    marks sit around the letters (see MARKS_RATIO); None when they do not tell. ``sideways``: the
    text lines run up and down the page, so the answer is 90 or 270, unless the page as it stands
    has more marks, sitting above its letters, than the turned page has (see below)."""
    image = cv2.rotate(binary, cv2.ROTATE_90_CLOCKWISE) if sideways else binary
    above, below = marks_above_and_below(image, dpi=dpi)
    if sideways:
        # A ruled table's rules can sharpen the column profile of an upright page: 7 of the 58
        # upright real pages of bench/realscans looked sideways; 4 were read turned 270 degrees,
        # then turned back by OSD and read again, one more went to OSD. As they stand, 4 of those
        # pages' marks sit above their letters and outnumber the turned page's 2-4.5 times (359
        # against 82 marks, 479 / 220, 80 / 39, 76 / 24): they are now taken as upright. A page that
        # is really sideways has 0.2-0.55 times as many marks as it stands as turned (the 2
        # sideways real pages 0.45 and 0.32, the synthetic pages of tests/test_clean.py turned).
        as_is = marks_above_and_below(binary, dpi=dpi)
        if sum(as_is) > above + below and _vote(*as_is) == 0:
            return 0
    vote = _vote(above, below)
    if vote is None:
        return None
    return (90 if vote == 0 else 270) if sideways else vote


def _vote(above: int, below: int) -> int | None:
    """0 when the marks sit above the letters, 180 when below, None when they do not tell."""
    if above + below < MARKS_MIN:
        return None
    if above >= MARKS_RATIO * below:
        return 0
    if below >= MARKS_RATIO * above:
        return 180
    return None


def marks_above_and_below(binary: np.ndarray, *, dpi: float) -> tuple[int, int]:
    """How many small marks sit just above a letter, and how many just below one."""
    scale = min(1.0, ORIENT_DPI / dpi)
    small = shrink(binary, scale) if scale < 1.0 else binary
    contours, _ = cv2.findContours(cv2.compare(small, 128, cv2.CMP_LT), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if len(contours) < MARKS_MIN:
        return 0, 0
    boxes = np.array([cv2.boundingRect(c) for c in contours], np.int32).reshape(-1, 4)
    x0, y0, w, h = boxes.T
    tall = h[h >= 3]
    if len(tall) < MARKS_MIN:
        return 0, 0
    size = float(np.percentile(tall, 75))  # a tall letter's height
    letter = (h >= 0.5 * size) & (h <= 1.6 * size) & (w <= 2.5 * size)
    mark = (h < 0.45 * size) & (w < 0.9 * size)
    letters, marks = np.flatnonzero(letter), np.flatnonzero(mark)
    if not len(letters) or not len(marks):
        return 0, 0
    lx0, lx1, ly0, ly1 = x0[letters], x0[letters] + w[letters], y0[letters], y0[letters] + h[letters]
    above = below = 0
    for part in np.array_split(marks, max(1, len(marks) // 500)):  # ~500 x letters booleans at a time
        cx = (x0[part] + w[part] / 2)[:, None]
        over = (lx0 <= cx) & (lx1 >= cx)  # the letter spans the mark's centre column
        gap_up = ly0 - (y0[part] + h[part])[:, None]  # from the mark's bottom down to the letter's top
        gap_down = y0[part][:, None] - ly1            # from the letter's bottom down to the mark's top
        is_above = (over & (gap_up >= -0.15 * size) & (gap_up <= 0.5 * size)).any(axis=1)
        is_below = (over & (gap_down >= -0.15 * size) & (gap_down <= 0.5 * size)).any(axis=1)
        above += int((is_above & ~is_below).sum())
        below += int((is_below & ~is_above).sum())
    return above, below


def _ink_points(binary: np.ndarray, *, dpi: float):
    """Centred coordinates of the ink on a ~100-dpi copy (None when there is too little ink)."""
    scale = min(1.0, DESKEW_DPI / dpi)
    small = shrink(255 - binary, scale)  # ink as bright so INTER_AREA keeps thin strokes
    ys, xs = np.nonzero(small > 96)
    if len(xs) < 200:  # a blank or nearly blank page has no lines to align
        return None
    h, w = small.shape
    return xs.astype(np.float32) - w / 2, ys.astype(np.float32) - h / 2, h, w


def _best_line_angle(points) -> tuple[float, float] | None:
    """(angle that levels the rows, profile sharpness there), searched within ±MAX_SKEW_DEGREES."""
    if points is None:
        return None
    xs, ys, h, w = points
    n_bins = int(np.hypot(h, w)) + 4

    def sharpness(angle: float) -> float:
        # Row profile after turning the ink by `angle` (cv2's convention, CCW positive): text lines
        # give tall narrow peaks exactly when they are horizontal, which maximises the variance.
        t = np.deg2rad(angle)
        rows = (-np.sin(t) * xs + np.cos(t) * ys + n_bins / 2).astype(np.int32)
        profile = np.bincount(rows, minlength=n_bins).astype(np.float64)
        return float(np.sum(np.diff(profile) ** 2))

    coarse = np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 1e-9, COARSE_STEP_DEGREES)
    best = max(coarse, key=sharpness)
    fine = np.arange(best - COARSE_STEP_DEGREES, best + COARSE_STEP_DEGREES + 1e-9, FINE_STEP_DEGREES)
    best = max(fine, key=sharpness)
    # Turning by `best` levels the lines, so the page is tilted by -best.
    return float(best), sharpness(best)


def _orientation(binary: np.ndarray, *, dpi: float, workdir: Path, stem: str) -> int:
    """Clockwise turn that makes the page upright, or 0 when Tesseract is not confident."""
    scale = min(1.0, OSD_DPI / dpi)
    small = binarise(shrink(binary, scale))
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=f"{stem}_osd_") as tmp:
        path = Path(tmp) / f"{stem}_osd.pgm"  # not PBM: see the line crop's reading image in clean.clean_page
        write_image(path, small)
        found = ocr.detect_orientation(path, dpi=round(dpi * scale))
    return found.rotate if found.confidence >= OSD_MIN_CONFIDENCE else 0
