"""Clean one scanned page for OCR: border, orientation, deskew, background, binarisation, speckle.

The stage reads whatever the reader wrote (PGM/PPM/PNG), and writes two files named after the page:
``{stem}_ocr.pbm`` (1-bit, upright, deskewed: what Tesseract reads) and, only when the page carries
real colour such as a red seal or a blue signature, ``{stem}_colour.ppm`` (the same geometry in RGB,
for the searchable PDF). Both are uncompressed: they are local intermediates, and PBM/PPM are read and
written by Tesseract and Pillow with no decoding cost (a 1-bit PNG costs ~60 ms to encode per page).

Order matters: the scanner border is removed first (it is axis-aligned in the scan, and its straight
edge would pull the skew search towards 0°), then the page is turned upright (the skew search needs
horizontal text lines), then deskewed, then binarised.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models import CorruptFile
from pipeline import ocr, scale as letter_scale

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
# Below this the page is left unrotated: a sub-pixel resample only blurs the glyphs.
MIN_CORRECTION_DEGREES = 0.05

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

# --- background and speckle --------------------------------------------------------------------
BACKGROUND_DPI = 25.0          # a 25-dpi copy closed over ~5 mm sees only paper, not 13 pt text
BACKGROUND_CLOSE_MM = 5.0
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
# Measured with bench/quick_cer.py (CER %, 8 pages, before -> after): rough 2.41 -> 1.30, office
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

MM_PER_INCH = 25.4

# --- low resolution ----------------------------------------------------------------------------
# Pages under this resolution are enlarged to UPSCALE_TARGET_DPI before thresholding. Measured
# (CER): the two real ~80-dpi letters of shared/realdata 11.1 -> 10.1 % and 15.5 -> 7.9 %; the sample
# page resampled to 75 dpi 5.5 -> 0.24 %, at 60 dpi 18.8 -> 0.31 %.
UPSCALE_BELOW_DPI = 150.0
UPSCALE_TARGET_DPI = 300.0
# Issue 14, the two real ~82-dpi letters (plain Tesseract on the raw pages 10.2 % CER), enlarged by
# 1.5 / 2 / 2.5 / 3 / 3.66 / 4x and read as grey: 7.3 / 7.2 / 7.6 / 8.5 / 8.2 / 8.4 %; Otsu-thresholded
# at 2.5 / 3.66x: 9.1 / 9.1 %, adaptive threshold 9.1 / 9.6 %. So: at most 2x, and Tesseract reads
# the enlarged grey, not our 1-bit image (which still makes the PDF page). Again with the header
# and closing read column by column (pipeline/layout.py), enlarged 1 / 1.25 / 1.5 / 1.75 / 2 / 2.5 /
# 3x: 3.89 / 3.05 / 2.61 / 1.77 / 2.00 / 2.77 / 3.82 %, Tesseract CPU 1.54 / 1.81 / 1.97 / 2.18 /
# 2.24 / 2.47 / 2.84 s for the two (plain Tesseract on the raw pages 1.53 s); 1-bit at 1.5 / 2x:
# 3.30 / 3.20 %. 2x stays (1.75x is one page's luck, not a trend).
UPSCALE_MAX_FACTOR = 2.0
READ_GREY_BELOW_DPI = True
# A low-resolution line crop (at least LINE_CROP_MIN_ASPECT times wider than tall, one text line:
# rows holding ink form one band, besides slivers under LINE_BAND_SHARE of its height, the accents
# and descenders of the lines above and below) is enlarged LINE_CROP_FACTOR times and read once,
# as 1-bit, as a single line (Tesseract --psm 7). Issue 14, the 38 real line crops of shared/realdata
# (~96 dpi, 17-32 px high; plain Tesseract --psm 7 1.36 % CER), as 1-bit --psm 7 enlarged 2 / 2.5 /
# 3 / 4 / 5 / 6x: 0.99 / 0.99 / 0.95 / 0.78 / 0.88 / 0.99 %; grey --psm 7 at 2 / 4x 1.26 / 1.12 %;
# 1-bit read as a page (--psm 3) at 2 / 4x 1.12 / 1.05 % (the slivers of the next lines are read);
# before, grey and 1-bit at 2x, as pages, the surer of the two readings: 1.22 % for two readings.
# A check on other lines, 40 typeset from the seed text for it (Liberation Sans and Serif 12 pt,
# resampled to ~96 dpi; not kept): before 0.33 %, now 0.36 % (grey 0.13 % there, 1.12 % on the real
# crops). A low-resolution page is read once, as grey: the two real letters read 7.51 % as grey,
# 8.94 % as 1-bit, and a second reading doubled their OCR time (sohoa/floor 1.6 -> 3-4x).
LINE_CROP_MIN_ASPECT = 4.0
LINE_CROP_FACTOR = 4.0
LINE_INK_ROW_SHARE = 0.02  # a row of a text band: ink on this share of its pixels
LINE_BAND_SHARE = 0.5

# --- what Tesseract reads ----------------------------------------------------------------------
# Issue 14: our 1-bit image loses thin strokes Tesseract reads in grey (the grave of "CẦU", "quyền":
# clean set 0.44 % CER as 1-bit, 0.31 % as the flattened grey), but the grey keeps the noise and
# speckle the cleaning removed (office 0.78 -> 1.25 %, rough 2.4 -> 6 %). So Tesseract reads the
# flattened grey only where the cleaned 1-bit image has ink, grown by READ_INK_MARGIN_PX; elsewhere
# the paper is white. One reading per page; measured on 8 pages per set (CER 1-bit -> this, %):
# clean 0.44 -> 0.31, office 0.78 -> 0.57, rough pages 1-7 2.39 -> 2.31, seal 1.27 -> 1.22,
# office-stamp 0.77 -> 0.66. A margin of 2 or 3 px: clean 0.31 / 0.31, office 0.60 / 0.58.
READ_INK_MARGIN_PX = 1
# Tesseract's time grows with the page's pixels, its accuracy does not past ~225 dpi for body text:
# a page finer than READ_MAX_DPI is read from a copy reduced to it (INTER_AREA keeps the glyph
# edges' grey), unless that would make its typical letter (the upper-quartile height of the ink
# marks the speckle pass keeps) shorter than READ_MIN_LETTER_PX. 8 pages per set, CER % at 300 dpi -> 225 dpi,
# Tesseract CPU per page 1.17-1.60 -> 0.95-1.32 s (-17 to -20 %): clean 0.31 -> 0.29, office
# 0.38 -> 0.39, rough 1.30 -> 1.23, office-stamp 0.45 -> 0.40, phone 0.36 -> 0.37, phone-stamp
# 0.44 -> 0.42; the same sets made with another noise seed: 0.31 / 0.54 / 1.12 / 0.47 / 0.38 ->
# 0.29 / 0.54 / 1.06 / 0.41 / 0.35. 200 dpi: clean 0.33, rough 1.37. 9-pt office pages lose at
# 225 dpi (0.57 -> 0.94 %), hence the letter-height floor: that height is 35-37 px for the 13-pt
# sets at 300 dpi (read at 225 dpi), 25 px for 9 pt (read as they are). Cropping the copy to the
# ink (2 / 6 / 12 mm margin) saved 6 % more of Tesseract's time on clean pages, none on rough ones,
# and moved CER both ways by up to 0.1 point (clean 0.29 / 0.33 / -, rough 1.30 / 1.26 / 1.23,
# rough with another seed 1.18 / 1.00 / 1.14, against 1.23 and 1.06 uncropped): not kept.
READ_MAX_DPI = 225.0
READ_MIN_LETTER_PX = 26.0


@dataclass(frozen=True)
class CleanedPage:
    """The files a cleaned page left behind and what was done to it."""

    ocr_image: Path            # 1-bit PBM, upright and deskewed (the PDF's page image)
    colour_image: Path | None  # RGB PPM with the same geometry, only when the page has colour
    rotation: int              # 0, 90, 180 or 270: degrees turned clockwise to make it upright
    skew_degrees: float        # measured tilt, counter-clockwise positive, that was corrected
    has_colour: bool
    width: int
    height: int
    dpi: float = 0.0           # of the output images: the input's, or more when a low-resolution page was enlarged
    read_image: Path | None = None  # what Tesseract reads when not ocr_image (same geometry, or see read_dpi)
    read_dpi: float = 0.0      # the read image's resolution when it is smaller than the page's (0: the same)
    single_line: bool = False  # a low-resolution line crop, read as one text line
    osd_run: bool = False      # the rotation is Tesseract's OSD's (not the marks' or "upright" by default)

    @property
    def tesseract_image(self) -> Path:
        return self.read_image or self.ocr_image

    def __post_init__(self) -> None:
        if self.rotation not in (0, 90, 180, 270):
            raise ValueError(f"rotation must be a multiple of 90, got {self.rotation}")
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"impossible page size {self.width}x{self.height}")


def clean_page(
    image_path: Path, *, dpi: float, workdir: Path, stem: str, detect_orientation: bool = True,
    osd_only_if_sideways: bool = False,
) -> CleanedPage:
    """Turn one scanned page into a 1-bit OCR image (and a colour image when it has colour).

    With ``osd_only_if_sideways``, Tesseract's OSD (as costly as the OCR itself) runs only when the
    text lines look vertical; a page upside down then goes through as it is, and the caller is
    expected to notice its unreadable words and clean it again with OSD (see ``document.py``).
    """
    grey, colour = _read(image_path)
    has_colour = colour is not None and _has_colour(colour, dpi=dpi)
    if not has_colour:
        colour = None
    else:
        # Seal and signature ink out of the OCR image, so the black text it crosses is read.
        grey = without_stamp_ink(colour, grey, dpi=dpi)
    low_resolution = dpi < UPSCALE_BELOW_DPI
    line_crop = low_resolution and is_line_crop(grey)
    if low_resolution:
        # Tesseract's models are trained on ~300-dpi glyphs; a 70–150 dpi photo or fax loses whole
        # strokes when thresholded at its own size. Enlarge the grey first, then threshold.
        factor = LINE_CROP_FACTOR if line_crop else min(UPSCALE_TARGET_DPI / dpi, UPSCALE_MAX_FACTOR)
        grey = cv2.resize(grey, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
        if colour is not None:
            colour = cv2.resize(colour, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_CUBIC)
        dpi = dpi * factor

    top, bottom, left, right = find_border(grey, dpi=dpi)
    grey = _fill_border(grey, top, bottom, left, right, value=paper_level(grey))
    if colour is not None:
        colour = _fill_border(colour, top, bottom, left, right, value=255)

    flat = flatten_background(grey, dpi=dpi)
    binary = _binarise(flat)
    rotation = 0
    osd_run = False
    level = None  # the sideways test's search across `binary`: what measure_skew would find on it
    if detect_orientation and not osd_only_if_sideways:
        rotation, osd_run = _orientation(binary, dpi=dpi, workdir=workdir, stem=stem), True
    elif detect_orientation:
        # A line crop's ink is one horizontal band: it may be upside down, never sideways (of the 38
        # real line crops one looked sideways to the profile test and cost an OSD run).
        sideways, level = (False, None) if line_crop else _sideways(binary, dpi=dpi)
        found = way_up(binary, dpi=dpi, sideways=sideways)
        if found is not None:
            rotation = found
        elif sideways:
            rotation, osd_run = _orientation(binary, dpi=dpi, workdir=workdir, stem=stem), True
    if rotation:
        code = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}
        grey, binary = cv2.rotate(grey, code[rotation]), cv2.rotate(binary, code[rotation])
        flat = cv2.rotate(flat, code[rotation])
        if colour is not None:
            colour = cv2.rotate(colour, code[rotation])

    skew = -level[0] if level is not None and not rotation else measure_skew(binary, dpi=dpi)
    if abs(skew) >= MIN_CORRECTION_DEGREES:
        # Rotate the grey page, not the 1-bit one: interpolating before thresholding keeps glyph
        # edges smooth, rotating a binary image leaves stair-steps Tesseract reads worse.
        grey = _rotate(grey, -skew, fill=paper_level(grey))
        flat = flatten_background(grey, dpi=dpi)
        binary = _binarise(flat)
        if colour is not None:
            colour = _rotate(colour, -skew, fill=(255, 255, 255))

    binary, letter_px = despeckle(binary, dpi=letter_scale.speckle_dpi(binary, dpi), place_dots=not low_resolution)

    workdir.mkdir(parents=True, exist_ok=True)
    ocr_image = workdir / f"{stem}_ocr.pbm"
    _write(ocr_image, binary)
    colour_image = None
    if colour is not None:
        colour_image = workdir / f"{stem}_colour.ppm"
        _write(colour_image, colour)
    read_image = workdir / f"{stem}_read.pgm"
    read_dpi = 0.0
    if line_crop:
        # As 8-bit PGM, not PBM: Leptonica skips whitespace after a PBM header, so a P4 whose
        # first byte of pixels is 0x09-0x0d or 0x20 (ink in the top-left corner of a tight
        # crop) is read shifted and refused ("pixReadStreamPnm: read error").
        _write(read_image, binary)
    elif low_resolution and READ_GREY_BELOW_DPI:
        # An enlarged low-resolution page reads better as grey than thresholded: Tesseract's own
        # binarisation sees the interpolated edges (measured in READ_GREY_BELOW_DPI's comment).
        _write(read_image, grey)
    else:
        read = ink_in_grey(binary, flat)
        scale = read_scale(dpi, letter_px)
        if scale < 1.0:
            read = cv2.resize(read, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            read_dpi = dpi * read.shape[1] / binary.shape[1]
        _write(read_image, read)
    height, width = binary.shape
    return CleanedPage(ocr_image=ocr_image, colour_image=colour_image, rotation=rotation,
                       skew_degrees=round(float(skew), 2), has_colour=has_colour,
                       width=width, height=height, dpi=dpi, read_image=read_image, single_line=line_crop,
                       read_dpi=read_dpi, osd_run=osd_run)


# --- steps, each usable on its own ---------------------------------------------------------------

def read_scale(dpi: float, letter_px: float | None) -> float:
    """How much smaller than the page Tesseract's copy may be (1.0: the page itself; see READ_MAX_DPI)."""
    if letter_px is None:
        return 1.0
    scale = max(READ_MAX_DPI / dpi, READ_MIN_LETTER_PX / letter_px)
    return scale if scale < 0.95 else 1.0  # a few per cent smaller saves nothing worth a resize


def ink_in_grey(binary: np.ndarray, grey: np.ndarray, *, margin: int = READ_INK_MARGIN_PX) -> np.ndarray:
    """The grey page where the 1-bit page has ink (grown by ``margin`` px), white paper elsewhere.

    Tesseract thresholds this itself: glyph edges keep their grey (thin accents survive), while the
    noise and speckle the 1-bit cleaning removed are gone.
    """
    ink = (binary == 0).astype(np.uint8)
    if margin:
        ink = cv2.dilate(ink, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1, 2 * margin + 1)))
    out = np.full_like(grey, 255)
    np.copyto(out, grey, where=ink > 0)
    return out


def is_line_crop(grey: np.ndarray) -> bool:
    """True for a crop of one text line: much wider than tall, and its inked rows one band (the
    slivers of the neighbouring lines' accents and descenders a tight crop catches aside)."""
    h, w = grey.shape[:2]
    if w < LINE_CROP_MIN_ASPECT * h:
        return False
    rows = np.count_nonzero(_binarise(grey) == 0, axis=1) >= LINE_INK_ROW_SHARE * w
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows.astype(np.int8), [0]))))
    bands = edges[1::2] - edges[::2]
    return len(bands) > 0 and int(np.sum(bands >= LINE_BAND_SHARE * bands.max())) == 1


def find_border(grey: np.ndarray, *, dpi: float) -> tuple[int, int, int, int]:
    """Widths in pixels (top, bottom, left, right) of the dark scanner band along each edge."""
    scale = min(1.0, DESKEW_DPI / dpi)
    small = _resize(grey, scale)
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
    text lines run up and down the page, so the answer is 90 or 270."""
    image = cv2.rotate(binary, cv2.ROTATE_90_CLOCKWISE) if sideways else binary
    above, below = marks_above_and_below(image, dpi=dpi)
    if above + below < MARKS_MIN:
        return None
    if above >= MARKS_RATIO * below:
        return 90 if sideways else 0
    if below >= MARKS_RATIO * above:
        return 270 if sideways else 180
    return None


def marks_above_and_below(binary: np.ndarray, *, dpi: float) -> tuple[int, int]:
    """How many small marks sit just above a letter, and how many just below one."""
    scale = min(1.0, ORIENT_DPI / dpi)
    small = _resize(binary, scale) if scale < 1.0 else binary
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
    small = _resize(255 - binary, scale)  # ink as bright so INTER_AREA keeps thin strokes
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


# --- helpers -------------------------------------------------------------------------------------

def _read(image_path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey page plus the BGR page when the file is in colour."""
    image = cv2.imread(str(image_path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise CorruptFile(f"cannot read page image {image_path.name}",
                          f"Không đọc được ảnh trang {image_path.name}")
    if image.dtype != np.uint8:  # 16-bit scans
        image = (image / 257).astype(np.uint8)
    if image.ndim == 2:
        return image, None
    if image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), image


def _has_colour(bgr: np.ndarray, *, dpi: float) -> bool:
    """True when a meaningful share of the page is clearly coloured (seal, signature, photo)."""
    small = _resize(bgr, min(1.0, 75.0 / dpi))
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
    small = _resize(grey, scale)
    k = max(3, round(BACKGROUND_CLOSE_MM / MM_PER_INCH * BACKGROUND_DPI) | 1)
    # Closing (max then min) erases dark text narrower than the kernel and leaves the paper tone.
    background = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
    background = cv2.blur(background, (k, k))
    background = cv2.resize(background, (grey.shape[1], grey.shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.divide(grey, np.maximum(background, 1), scale=255)


def _binarise(grey: np.ndarray) -> np.ndarray:
    _, binary = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return binary


def _orientation(binary: np.ndarray, *, dpi: float, workdir: Path, stem: str) -> int:
    """Clockwise turn that makes the page upright, or 0 when Tesseract is not confident."""
    scale = min(1.0, OSD_DPI / dpi)
    small = _binarise(_resize(binary, scale))
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix=f"{stem}_osd_") as tmp:
        path = Path(tmp) / f"{stem}_osd.pgm"  # not PBM: see the line crop's reading image in clean_page
        _write(path, small)
        found = ocr.detect_orientation(path, dpi=round(dpi * scale))
    return found.rotate if found.confidence >= OSD_MIN_CONFIDENCE else 0


def _rotate(image: np.ndarray, angle: float, *, fill) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=fill)


def _resize(image: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return image
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


def _write(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        import errno
        import shutil

        # OpenCV only answers False: tell a full disk (ENOSPC) apart from other failures.
        if shutil.disk_usage(path.parent).free < image.nbytes + 65536:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        raise OSError(f"cannot write {path}")
