"""Phone photos of a page: find the sheet on the desk, undo the perspective, even out the light.

A counter scanner fills its frame with the page; a phone photo shows a sheet of paper lying on a
darker desk, seen at an angle, lit from one side, and its JPEG says 72 dpi whatever the page. This
module finds the sheet (the largest bright region that leaves a darker margin), maps its four
corners onto a rectangle, divides out the uneven lighting, and estimates the page's real resolution
from its size in pixels (an A4 sheet, the paper of Vietnamese administrative documents, Decree
30/2020/NĐ-CP). The rest of the pipeline (preflight, clean, OCR) then sees a flat scanned page.

Cheap: detection runs on a ~600-px copy (a few ms); warping a 12-MP photo costs ~0.1 s.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Detection copy: the long side in pixels. A page corner found to ±1 px here is ±5 px on a
# 3000-px photo, ~0.1° of line tilt, which the deskew step removes.
DETECT_LONG_SIDE = 600
# The sheet covers between these shares of the frame. A scanner page (even with the dark band of
# an open lid along one or two edges) fills > 93 %; a sheet photographed from too far is < 25 %.
MIN_PAGE_SHARE = 0.25
MAX_PAGE_SHARE = 0.93
# The desk around the sheet is darker than the paper: its median below this share of the paper's.
MAX_DESK_TO_PAPER = 0.75
# Warp straight to this resolution when the photo resolves less: the 8 phone pages, 3 measured,
# ~220 dpi as photographed 0.82 % CER, warped to 300 dpi 0.70 % (plain Tesseract on the photo 0.75 %).
# Since Tesseract reads a 225-dpi copy of a finer page (clean.READ_MAX_DPI), warping to 225 rather
# than 300 dpi reads as well or better and skips cleaning pixels nobody reads: 8 pages each, CER %
# phone 0.37 -> 0.33, phone-stamp 0.42 -> 0.36, phone with another noise seed 0.35 -> 0.33; sohoa's
# own CPU per page 0.43 -> 0.33 s, 0.99 -> 0.74 s with a seal, Tesseract's unchanged.
PHOTO_TARGET_DPI = 225.0
MIN_PHOTO_PX = 1000  # long side: every phone camera since ~2010 gives more (2 MP = 1600 x 1200)
LIGHT_WINDOW = 0.25  # of the frame's long side: the window for the local paper brightness
# Edge band of the rectified page painted paper-white: a corner found a few pixels outside the
# sheet leaves a sliver of desk along the edge, which preflight would read as text cut off.
EDGE_BAND_MM = 1.5
# A4 (mm). A sheet whose corrected aspect ratio (long/short) lies within this range of √2 is taken
# as A4 and its resolution follows from its size; other sheets take their long side as 297 mm.
A4_MM = (210.0, 297.0)
# A side of the sheet that strays from the straight line between its corners by more than this
# share of the page's long side is followed as a curve (see _bowed_edge_maps). Flat synthetic phone
# pages (11): at most 0.0038, curled ones 0.006-0.05. Not when it strays further than MAX_BOW, or
# when it is not a smooth bow (RMS distance from one over MAX_BOW_RESIDUAL; flat and curled
# synthetic sheets: 0.0004-0.002; the real receipts photographed on textured desks: 0.005-0.023,
# where following that outline lost 40 % of one receipt's words).
MIN_BOW = 0.0075
MAX_BOW = 0.06
MAX_BOW_RESIDUAL = 0.003
BOW_GRID_PX = 8
A4_ASPECT_TOLERANCE = 0.12
MM_PER_INCH = 25.4
# Lighting: paper tone estimated on a ~25-dpi copy closed over ~5 mm (text vanishes), divided out.
LIGHT_DPI = 25.0
LIGHT_CLOSE_MM = 6.0
LIGHT_BAND_ROWS = 256  # rows divided at a time (bounds the float copies to a few MB)


@dataclass(frozen=True)
class Capture:
    """Where the sheet lies in the photo, in full-resolution pixels (TL, TR, BR, BL), and its size."""

    corners: np.ndarray  # float32 (4, 2)
    width: int           # of the rectified page, pixels
    height: int
    dpi: float           # of the rectified page (at least PHOTO_TARGET_DPI)
    photo_dpi: float     # the sheet's resolution in the photo, estimated from its size
    outline: np.ndarray | None = None  # float32 (n, 2): the sheet's own edge, full-resolution pixels


def find_page(image: np.ndarray) -> Capture | None:
    """The sheet in a phone photo (grey or BGR), or None when the image looks like a scan."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    h, w = grey.shape
    if max(h, w) < MIN_PHOTO_PX:
        return None  # a line crop, a thumbnail, a fax: no phone camera takes so small a picture
    scale = min(1.0, DETECT_LONG_SIDE / max(h, w))
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else grey
    small = cv2.GaussianBlur(small, (5, 5), 0)
    # Light falls off across a photo (window, vignetting) as much as paper and desk differ, so compare
    # each pixel with the brightest paper near it: the maximum over a window a quarter of the frame
    # wide always holds some paper, and the desk is well under half of it.
    k = max(3, int(LIGHT_WINDOW * max(small.shape)) | 1)
    light = cv2.blur(cv2.dilate(small, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))), (k, k))
    small = cv2.divide(small, np.maximum(light, 1), scale=200)
    # Paper vs desk: Otsu on the relative brightness, then close the text lines into the sheet.
    _, bright = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    k = max(3, int(0.03 * max(small.shape)) | 1)
    bright = cv2.morphologyEx(bright, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(bright, connectivity=4)
    if n <= 1:
        return None
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    sheet = (labels == biggest).astype(np.uint8)
    share = float(sheet.mean())
    if not MIN_PAGE_SHARE <= share <= MAX_PAGE_SHARE:
        return None
    paper = float(np.median(small[sheet > 0]))
    desk = float(np.median(small[sheet == 0]))
    if desk > MAX_DESK_TO_PAPER * paper:
        return None
    contours, _ = cv2.findContours(sheet, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)  # every edge pixel
    hull = cv2.convexHull(max(contours, key=cv2.contourArea))
    quad = _four_corners(hull)
    if quad is None:
        return None
    # The quadrilateral must hold most of the region: a ragged blob (a hand, a second sheet) is not a page.
    if cv2.contourArea(quad) < 0.9 * float(sheet.sum()):
        return None
    corners = _order(quad.reshape(4, 2).astype(np.float32) / scale)
    tl, tr, br, bl = corners
    width = (np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2
    height = (np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2
    long_px, short_px = max(width, height), min(width, height)
    if abs(long_px / short_px - A4_MM[1] / A4_MM[0]) <= A4_ASPECT_TOLERANCE:
        # Perspective foreshortens one direction more than the other: give the sheet A4's proportions.
        dpi = float(np.sqrt(long_px * short_px / (A4_MM[0] * A4_MM[1]))) * MM_PER_INCH
        long_px = A4_MM[1] / MM_PER_INCH * dpi
        short_px = A4_MM[0] / MM_PER_INCH * dpi
    else:
        dpi = long_px / (A4_MM[1] / MM_PER_INCH)
    width, height = (short_px, long_px) if height >= width else (long_px, short_px)
    photo_dpi = float(dpi)
    if PHOTO_TARGET_DPI and dpi < PHOTO_TARGET_DPI:
        grow = PHOTO_TARGET_DPI / dpi
        width, height, dpi = width * grow, height * grow, PHOTO_TARGET_DPI
    outline = max(contours, key=cv2.contourArea).reshape(-1, 2).astype(np.float32) / scale
    return Capture(corners=corners, width=int(round(width)), height=int(round(height)), dpi=float(dpi),
                   photo_dpi=photo_dpi, outline=outline)


def rectify(image: np.ndarray, capture: Capture) -> np.ndarray:
    """The sheet alone, seen from straight above, with the lighting evened out (grey or BGR in, same out)."""
    target = np.float32([[0, 0], [capture.width - 1, 0], [capture.width - 1, capture.height - 1],
                         [0, capture.height - 1]])
    m = cv2.getPerspectiveTransform(capture.corners, target)
    maps = _bowed_edge_maps(capture, m)
    if maps is None:
        page = cv2.warpPerspective(image, m, (capture.width, capture.height), flags=cv2.INTER_CUBIC,
                                   borderMode=cv2.BORDER_REPLICATE)
    else:
        page = cv2.remap(image, *maps, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    page = flatten_light(page, dpi=capture.dpi)
    band = max(1, int(round(EDGE_BAND_MM / MM_PER_INCH * capture.dpi)))
    white = 245 if page.ndim == 2 else (245, 245, 245)
    page[:band], page[-band:], page[:, :band], page[:, -band:] = white, white, white, white
    return page


def _bowed_edge_maps(capture: Capture, m: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Remap tables that carry the sheet's real edges, not just its corners, onto the rectangle's
    sides (None when the edges are straight: the plain perspective warp is exact then).

    A curled sheet's edges are curves: between the corners the homography leaves a wedge of desk
    (read as a line of junk that swallows the line next to it) or cuts off the paper that bulges
    beyond the straight side, with the words printed there. Each side's distance from the
    rectangle, measured along it, is spread across the page linearly (a Coons patch).
    """
    if capture.outline is None:
        return None
    w, h = capture.width, capture.height
    edge = cv2.perspectiveTransform(capture.outline.reshape(-1, 1, 2), m).reshape(-1, 2).astype(np.float64)
    x, y = edge[:, 0], edge[:, 1]
    side = np.argmin(np.stack([np.abs(y), np.abs(y - (h - 1)), np.abs(x), np.abs(x - (w - 1))]), axis=0)
    along_x, along_y = np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64)
    long_side = max(w, h)
    devs = []
    for k, (pos, off, n) in enumerate(((x, y, w), (x, y - (h - 1), w), (y, x, h), (y, x - (w - 1), h))):
        mine = side == k
        if mine.sum() < 8:
            return None
        order = np.argsort(pos[mine])
        dev = np.interp(along_x if n == w else along_y, pos[mine][order], off[mine][order])
        # A paper edge bends smoothly and meets its corners: t(1-t)(a + bt + ct²) along the side.
        # Fitted away from the corners, where the mask's rounding and the choice of side blur it.
        t = np.arange(n, dtype=np.float64) / (n - 1)
        basis = (t * (1 - t))[:, None] * np.stack([np.ones(n), t, t * t], axis=1)
        mid = slice(n // 10, n - n // 10)
        coef, *_ = np.linalg.lstsq(basis[mid], dev[mid], rcond=None)
        smooth = np.einsum("ij,j->i", basis, coef)
        if np.sqrt(np.mean((dev[mid] - smooth[mid]) ** 2)) > MAX_BOW_RESIDUAL * long_side:
            return None  # not a paper edge: the desk's own pattern, a hand, a crumpled receipt
        devs.append(smooth)
    bow = max(float(np.abs(d).max()) for d in devs)
    if not MIN_BOW * long_side <= bow <= MAX_BOW * long_side:
        return None
    # On a grid of BOW_GRID_PX cells (the displacement is smooth), then enlarged: a full-resolution
    # float64 table of a 225-dpi page would be ~80 MB. cv2.resize puts sample k at k*g + (g-1)/2.
    g = BOW_GRID_PX
    gx = np.arange(w // g + 2) * g + (g - 1) / 2
    gy = np.arange(h // g + 2) * g + (g - 1) / 2
    top, bottom = (np.interp(gx, along_x, d) for d in devs[:2])
    left, right = (np.interp(gy, along_y, d) for d in devs[2:])
    t = gy[:, None] / (h - 1)
    s = gx[None, :] / (w - 1)
    rx = gx[None, :] + (1 - s) * left[:, None] + s * right[:, None]
    ry = gy[:, None] + (1 - t) * top[None, :] + t * bottom[None, :]
    # From the rectified frame back into the photo: the inverse homography, point by point.
    back = cv2.perspectiveTransform(np.dstack([rx, ry]).reshape(-1, 1, 2), np.linalg.inv(m))
    back = back.reshape(len(gy), len(gx), 2).astype(np.float32)
    full = cv2.resize(back, (len(gx) * g, len(gy) * g), interpolation=cv2.INTER_LINEAR)[:h, :w]
    return np.ascontiguousarray(full[..., 0]), np.ascontiguousarray(full[..., 1])


def flatten_light(image: np.ndarray, *, dpi: float) -> np.ndarray:
    """Divide every channel by the paper tone, so shadow and vignetting become white paper."""
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    scale = min(1.0, LIGHT_DPI / dpi)
    small = cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    k = max(3, int(round(LIGHT_CLOSE_MM / MM_PER_INCH * LIGHT_DPI)) | 1)
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    paper = cv2.blur(paper, (k, k))
    paper = cv2.resize(paper, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    # 245/255: the flattened paper lands just below white, as a scanner's does. Float arithmetic
    # (8-bit division rounds where this truncates, and read phone pages 0.05 % CER worse), but a
    # band of rows at a time: a float copy of a whole 300-dpi colour page is 100 MB, and the
    # expression below makes three of them.
    out = np.empty_like(image)
    for top in range(0, image.shape[0], LIGHT_BAND_ROWS):
        rows = slice(top, top + LIGHT_BAND_ROWS)
        gain = 245.0 / np.maximum(paper[rows], 1).astype(np.float32)
        lit = image[rows].astype(np.float32)
        lit *= gain[..., None] if image.ndim == 3 else gain
        # Never negative, so clipping is a minimum; the assignment truncates, as astype(uint8) does.
        out[rows] = np.minimum(lit, 255, out=lit)
    return out


def _four_corners(hull: np.ndarray) -> np.ndarray | None:
    """Simplify a convex outline to four points (None when it will not become a quadrilateral)."""
    perimeter = cv2.arcLength(hull, True)
    for eps in (0.01, 0.02, 0.03, 0.05, 0.08):
        quad = cv2.approxPolyDP(hull, eps * perimeter, True)
        if len(quad) == 4:
            return quad
        if len(quad) < 4:
            break
    return None


def _order(points: np.ndarray) -> np.ndarray:
    """Corners as top-left, top-right, bottom-right, bottom-left."""
    s = points.sum(axis=1)
    d = points[:, 1] - points[:, 0]
    return np.float32([points[np.argmin(s)], points[np.argmin(d)], points[np.argmax(s)], points[np.argmax(d)]])
