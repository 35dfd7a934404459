"""Straighten the text lines of a bent or curled page (dewarping).

camera.rectify maps a photographed sheet's four corners onto a rectangle; a sheet that is not flat
(an edge curling up, a page folded in two and opened, a bound page rising to its gutter, on a phone
or on a flatbed's glass) still shows its text lines as curves after that: Tesseract then merges the
lines where they cross each other's band, and cuts words where a line leaves its neighbours' height.
This module finds the text lines on a small copy of the page, measures how far they are from
straight, and only when they are measurably curved fits a smooth model of the vertical displacement
across the page (a cubic spline along the lines times a cubic across them) and remaps the page
so every line is straight. A flat page is returned as None: its pixels are never touched.

Cheap: the detection runs on a 100-dpi copy (~1 MP for A4), 26-55 ms of CPU a page, 3-5 % of
Tesseract's reading of it; a curled page costs 130-200 ms in all (bench/ocr/RESULTS.md, curled pages).
Letters foreshortened where the paper turns away are not widened back: on the synthetic curls the
words still missed afterwards are tone-mark misreadings, not the narrowed words at the edge.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Detection copy: at 100 dpi a 12-14 pt line of an administrative letter (Decree 30: 13-14 pt) is
# ~25 px apart from the next and its x-height ~8 px, enough to follow it within a pixel.
DETECT_DPI = 100.0
A4_LONG_IN = 297 / 25.4
# Ink: darker than the local paper (mean of a ~0.4-inch window) by this many grey levels.
INK_BLOCK_IN = 0.4
INK_C = 12
# Ink blobs taller than this are not letters (rules drawn down, photos, seals' rings, dark edges).
MAX_GLYPH_IN = 0.35
# The ink map is averaged along the line over this length (longer than a word gap, so a line is
# one ridge) and across it with this sigma (about half an x-height, so accents and descenders
# fold into the x-height band instead of making ridges of their own).
SMEAR_IN = 0.3
ACROSS_SIGMA_IN = 0.03
STEP_PX = 4                 # columns sampled along the lines, in the detection copy
RIDGE_MIN_DENSITY = 0.12    # share of ink along SMEAR_IN at a line's centre (text is ~0.2-0.4)
RIDGE_WINDOW_IN = 0.12      # about half the spacing of 10-14 pt lines
RIDGE_SHARE = 0.6           # of the crest's density: the band kept along each line
MIN_LINE_IN = 1.2           # shorter ridges (a page number, a lone word) say little about the bend
MAX_LINE_IN = 0.25          # a smeared line of 14-pt text is ~0.1 in thick; a slab of lines is more
MIN_LINES = 5
MAX_WIGGLE_IN = 0.02        # real scans' lines: 0.004-0.01 in from their cubic; a signature 0.03
# Curved when the lines' RMS distance from straight parallel lines (at the page's skew) exceeds
# this share of the line spacing AND the bend model explains most of that variance. Measured on
# synthetic flat pages (clean/office/rough/phone, 19 pages): 0.021-0.024 of a spacing (the ink
# centre's jitter from letter shapes), and the model explains none of it; curled pages: 0.03-0.3;
# 66 real scans and photos: up to 0.085, never half explained, except three curled or crumpled photos.
CURVED_RMS_SPACING = 0.04
MIN_EXPLAINED = 0.5
# The model: cubic B-spline along the page (this many segments) times a polynomial across it.
SPLINE_SEGMENTS = 8
ACROSS_DEGREE = 3
SMOOTHNESS = 3.0            # second-difference penalty on the spline, in detection pixels
RIDGE = 1e-3
PASSES = 2                  # measure and straighten at most this often (see straighten)
GRID_PX = 16                # the displacement is computed every GRID_PX full-resolution pixels


@dataclass(frozen=True)
class Bend:
    """The text lines found on a page and the displacement model fitted to them."""

    lines: int              # text lines followed
    spacing: float          # line spacing (lower quartile of neighbours' gaps), detection pixels
    straight_rms: float     # RMS distance of line points from straight parallel lines, in spacings
    model_rms: float        # RMS distance from the bend model, in spacings
    coef: np.ndarray        # (SPLINE_SEGMENTS + 3, ACROSS_DEGREE + 1) in detection pixels
    size: tuple[int, int]   # detection copy (width, height)
    y_range: tuple[float, float]  # normalised rows the text spans (the model is clamped to them)

    @property
    def curved(self) -> bool:
        explained = 1 - (self.model_rms / max(self.straight_rms, 1e-9)) ** 2
        return self.straight_rms > CURVED_RMS_SPACING and explained > MIN_EXPLAINED


def straighten(image: np.ndarray, *, dpi: float) -> np.ndarray | None:
    """The page (grey or BGR) with its text lines straightened, or None when they are straight already."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    bend = measure(grey, dpi=dpi)
    if bend is None or not bend.curved:
        return None
    xx, yy = _grid(grey.shape)
    rows = _source_rows(bend, xx, yy)
    for _ in range(PASSES - 1):
        # A strong bend runs lines together in the detection copy, so the first model is fitted to
        # fewer, shorter lines; measured again on the straightened page, the rest of it shows.
        again = measure(cv2.remap(grey, *_full_maps(rows, grey.shape), cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_REPLICATE), dpi=dpi)
        if again is None or not again.curved:
            break
        # Both passes in one remap of the page (one interpolation): output row -> the row of the
        # once-straightened page the second model takes it from -> the bent page's row.
        rows = _source_rows(bend, xx, _source_rows(again, xx, yy))
    return cv2.remap(image, *_full_maps(rows, grey.shape), cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def measure(grey: np.ndarray, *, dpi: float) -> Bend | None:
    """Follow the text lines on a small copy and fit the bend (None: too few lines to say)."""
    # A file that says 72 or 96 dpi may hold a 300-dpi scan; no page a counter takes is larger than
    # A4, so a page's long side gives a floor for its resolution (and bounds the detection's cost).
    dpi = max(dpi, max(grey.shape) / A4_LONG_IN)
    scale = min(1.0, DETECT_DPI / dpi)
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
    d = dpi * scale
    density = _line_density(small, d)
    lines = _follow_lines(density, d)
    if len(lines) < MIN_LINES:
        return None
    h, w = small.shape
    spacing = _spacing(lines)
    if spacing <= 0:
        return None
    # A printed line, bent or not, is smooth: a cubic follows it to a small part of a line spacing.
    # A signature, a seal's ring or two lines that touch in places do not follow one.
    lines = [ln for ln in lines if _wiggle(ln) <= MAX_WIGGLE_IN * d]
    if len(lines) < MIN_LINES:
        return None
    xs = np.concatenate([ln[:, 0] for ln in lines]) / w
    ys = np.concatenate([ln[:, 1] for ln in lines])
    # The model's second variable is the line's own height on the page (its median row), not the
    # point's: y = offset + D(x, y) with the point's y on both sides is solved by D = y.
    rows = np.concatenate([np.full(len(ln), np.median(ln[:, 1])) for ln in lines]) / h
    ids = np.concatenate([np.full(len(ln), k) for k, ln in enumerate(lines)])
    straight = _straight_residuals(lines)
    keep = np.abs(straight) < 0.5 * spacing + 3 * np.median(np.abs(straight))
    coef = np.zeros((SPLINE_SEGMENTS + 3, ACROSS_DEGREE + 1))
    res = straight
    # Straight enough already: no model to fit (most pages stop here, at ~2/3 of the cost).
    fits = 2 if np.sqrt(np.mean(straight[keep] ** 2)) > CURVED_RMS_SPACING * spacing else 0
    for _ in range(fits):
        # Refit without the points the last fit could not explain (a ridge that jumped lines).
        coef, res = _fit(xs, rows, ys, ids, len(lines), keep)
        keep = np.abs(res) < max(0.25 * spacing, 3 * 1.4826 * float(np.median(np.abs(res[keep]))))
    y_norm = rows
    # With no fit, model_rms = straight_rms: nothing explained, so not curved.
    return Bend(lines=len(lines), spacing=spacing,
                straight_rms=float(np.sqrt(np.mean(straight[keep] ** 2))) / spacing,
                model_rms=float(np.sqrt(np.mean(res[keep] ** 2))) / spacing,
                coef=coef, size=(w, h), y_range=(float(y_norm.min()), float(y_norm.max())))


def _line_density(small: np.ndarray, dpi: float) -> np.ndarray:
    """Share of ink around each pixel, averaged along the lines: a ridge down every text line."""
    block = max(3, int(INK_BLOCK_IN * dpi) | 1)
    ink = cv2.adaptiveThreshold(small, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, block, INK_C)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    tall = stats[:, cv2.CC_STAT_HEIGHT] > MAX_GLYPH_IN * dpi
    tall[0] = False
    if tall.any():
        ink[tall[labels]] = 0
    smear = max(3, int(SMEAR_IN * dpi))
    density = cv2.blur(ink.astype(np.float32), (smear, 1))
    return cv2.GaussianBlur(density, (1, 0), sigmaX=0.1, sigmaY=max(0.8, ACROSS_SIGMA_IN * dpi))


def _follow_lines(density: np.ndarray, dpi: float) -> list[np.ndarray]:
    """The text lines as (n, 2) arrays of (x, y): each smeared line's ink centre, column by column."""
    # Only the crest of each line's ridge: in a dense block of small print the smeared lines touch,
    # so the mask keeps what is near the densest row within half a line spacing above or below.
    k = max(3, int(RIDGE_WINDOW_IN * dpi) | 1)
    crest = cv2.dilate(density, cv2.getStructuringElement(cv2.MORPH_RECT, (1, k)))
    mask = ((density > RIDGE_MIN_DENSITY) & (density >= RIDGE_SHARE * crest)).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return []
    widths = stats[1:, cv2.CC_STAT_WIDTH]
    long_enough = widths >= MIN_LINE_IN * dpi
    if not long_enough.any():
        return []
    cols = np.arange(0, density.shape[1], STEP_PX)
    lab = labels[:, cols]
    weight = density[:, cols] * (lab > 0)
    rows = np.arange(density.shape[0], dtype=np.float64)[:, None]
    key = (lab * len(cols) + np.arange(len(cols))[None, :]).ravel()
    total = np.bincount(key, weights=weight.ravel(), minlength=n * len(cols)).reshape(n, len(cols))
    moment = np.bincount(key, weights=(weight * rows).ravel(), minlength=n * len(cols)).reshape(n, len(cols))
    # A blob's thickness, column by column (its bounding box says nothing on a bent page). Two lines
    # run together (a curl brought them within a line's height) are twice as thick as a line, and
    # their ink centre lies between them; a page turned sideways smears into thick slabs.
    count = np.bincount(key, weights=(lab > 0).ravel(), minlength=n * len(cols)).reshape(n, len(cols))
    thick = np.array([float(np.median(c[c > 0])) if (c > 0).any() else 0.0 for c in count])
    typical = float(np.median(thick[1:][long_enough]))
    thin = (thick[1:] <= 1.6 * typical) & (thick[1:] <= MAX_LINE_IN * dpi)
    lines = []
    for k in np.flatnonzero(long_enough & thin) + 1:
        present = total[k] > 0
        if present.sum() * STEP_PX >= MIN_LINE_IN * dpi:
            lines.append(np.column_stack([cols[present], moment[k, present] / total[k, present]]).astype(np.float64))
    return lines


def _wiggle(line: np.ndarray) -> float:
    """RMS distance of a line's points from the cubic through them."""
    x = (line[:, 0] - line[:, 0].mean()) / max(float(np.ptp(line[:, 0])), 1.0)
    fit = np.polyval(np.polyfit(x, line[:, 1], 3), x)
    return float(np.sqrt(np.mean((line[:, 1] - fit) ** 2)))


def _spacing(lines: list[np.ndarray]) -> float:
    """Median distance between neighbouring lines, measured where both are present."""
    mids = sorted(lines, key=lambda ln: float(np.median(ln[:, 1])))
    gaps = []
    for a, b in zip(mids, mids[1:]):
        both = np.intersect1d(a[:, 0], b[:, 0])
        if len(both):
            ya = np.interp(both, a[:, 0], a[:, 1])
            yb = np.interp(both, b[:, 0], b[:, 1])
            gaps.append(float(np.median(yb - ya)))
    gaps = [g for g in gaps if g > 0]
    # The lower quartile: where a line between two others was not followed, their gap is two spacings.
    return float(np.percentile(gaps, 25)) if gaps else 0.0


def _straight_residuals(lines: list[np.ndarray]) -> np.ndarray:
    """Each line point's distance from straight, parallel lines (one slope for the page: its skew).

    Not each line's own straight fit: a short line (a list item, a signature block) on a bent page
    is nearly straight but tilted against its neighbours, and that tilt is the bend too.
    """
    centred_x = [ln[:, 0] - ln[:, 0].mean() for ln in lines]
    centred_y = [ln[:, 1] - ln[:, 1].mean() for ln in lines]
    slope = sum(float(cx @ cy) for cx, cy in zip(centred_x, centred_y)) / max(
        sum(float(cx @ cx) for cx in centred_x), 1e-9)
    return np.concatenate([cy - slope * cx for cx, cy in zip(centred_x, centred_y)])


def _spline_basis(x: np.ndarray) -> np.ndarray:
    """Uniform cubic B-spline basis on [0, 1] with SPLINE_SEGMENTS segments: (len(x), segments + 3)."""
    t = np.clip(x, 0.0, 1.0) * SPLINE_SEGMENTS
    seg = np.minimum(t.astype(int), SPLINE_SEGMENTS - 1)
    u = t - seg
    weights = np.stack([(1 - u) ** 3 / 6, (3 * u ** 3 - 6 * u ** 2 + 4) / 6,
                        (-3 * u ** 3 + 3 * u ** 2 + 3 * u + 1) / 6, u ** 3 / 6], axis=1)
    basis = np.zeros((len(x), SPLINE_SEGMENTS + 3))
    rows = np.arange(len(x))
    for k in range(4):
        basis[rows, seg + k] = weights[:, k]
    return basis


def _design(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Columns: every spline function times every power of y (y centred on the page)."""
    basis = _spline_basis(x)
    powers = np.stack([(y - 0.5) ** b for b in range(ACROSS_DEGREE + 1)], axis=1)
    return (basis[:, :, None] * powers[:, None, :]).reshape(len(x), -1)


def _fit(xs, yn, ys, ids, n_lines, keep) -> tuple[np.ndarray, np.ndarray]:
    """Least squares: y = offset of its line + D(x, y), D smooth along x; returns D's coefficients
    and every point's residual."""
    design = _design(xs, yn)
    offsets = np.zeros((len(xs), n_lines))
    offsets[np.arange(len(xs)), ids] = 1.0
    a = np.hstack([offsets, design])
    k, p = SPLINE_SEGMENTS + 3, ACROSS_DEGREE + 1
    # Smoothness: second differences of the spline coefficients, for each power of y.
    diff = np.diff(np.eye(k), n=2, axis=0)
    penalty = np.kron(diff, np.eye(p)) * SMOOTHNESS
    reg = np.hstack([np.zeros((penalty.shape[0], n_lines)), penalty])
    ridge = np.hstack([np.zeros((k * p, n_lines)), np.eye(k * p) * RIDGE])
    lhs = np.vstack([a[keep], reg, ridge])
    rhs = np.concatenate([ys[keep], np.zeros(len(reg) + len(ridge))])
    # Normal equations: the system is tall (thousands of points, ~80 unknowns) and well posed
    # with the ridge, and solving it this way is ~100x cheaper than an SVD of the whole matrix.
    # einsum, not @: OpenBLAS spreads products this small over every core and spins them (a page's
    # fit cost 320 ms of CPU that way, 60 ms in one thread), while Tesseract works beside it.
    normal = np.einsum("ij,ik->jk", lhs, lhs) + 1e-9 * np.eye(lhs.shape[1])
    sol = np.linalg.solve(normal, np.einsum("ij,i->j", lhs, rhs))
    return sol[n_lines:].reshape(k, p), ys - np.einsum("ij,j->i", a, sol)


def _displacement(bend: Bend, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """D(x, y) without its part that does not vary along the lines, in detection pixels (x, y normalised)."""
    lo, hi = bend.y_range
    yc = np.clip(y, lo, hi)
    d = np.einsum("ij,j->i", _design(x.ravel(), yc.ravel()), bend.coef.ravel()).reshape(x.shape)
    # Minus its mean over the page's width at each row: the lines keep their average height.
    along, rows = np.linspace(0, 1, 33), np.linspace(lo, hi, 65)
    table = np.einsum("ij,j->i", _design(np.tile(along, rows.size), np.repeat(rows, along.size)), bend.coef.ravel())
    return d - np.interp(yc, rows, table.reshape(rows.size, along.size).mean(axis=1))


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (x, y) of the grid where the displacement is computed, every GRID_PX pixels."""
    h, w = shape
    # cv2.resize puts grid sample k at pixel k * GRID_PX + (GRID_PX - 1) / 2: sample there.
    gx = np.arange(w // GRID_PX + 2, dtype=np.float64) * GRID_PX + (GRID_PX - 1) / 2
    gy = np.arange(h // GRID_PX + 2, dtype=np.float64) * GRID_PX + (GRID_PX - 1) / 2
    return np.meshgrid(gx / w, gy / h)


def _source_rows(bend: Bend, xx: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """For output rows ``rows`` (normalised, on the grid), the bent page's rows they come from."""
    src = rows.copy()
    for _ in range(4):
        # The output row v holds the source row y with y = v + D(x, y): fixed-point iteration.
        src = rows + _displacement(bend, xx, src) / bend.size[1]
    return src


def _full_maps(rows: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Full-resolution remap tables from the grid's source rows (columns stay where they are)."""
    h, w = shape
    gh, gw = rows.shape
    map_y = cv2.resize((rows * h).astype(np.float32), (gw * GRID_PX, gh * GRID_PX),
                       interpolation=cv2.INTER_LINEAR)[:h, :w]
    map_x = np.broadcast_to(np.arange(w, dtype=np.float32)[None, :], (h, w))
    return np.ascontiguousarray(map_x), np.ascontiguousarray(map_y)
