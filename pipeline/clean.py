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

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models import CorruptFile
from pipeline import scale as letter_scale
from pipeline import tables
from pipeline.background import (_fill_border, _has_colour, find_border, flatten_background, paper_level,
                                 without_stamp_ink)
from pipeline.despeckle import despeckle
from pipeline.orient import _orientation, _sideways, measure_skew, way_up
from pipeline.raster import binarise, write_image


# --- deskew ------------------------------------------------------------------------------------
# Below this the page is left unrotated: a resample blurs the glyphs more than the tilt costs. Issue 19,
# the real set (bench/realscans): decisions scanned at 150-300 dpi tilted 0.15-0.45°, rotated with
# bilinear interpolation, lost the tone mark over a hat ("đổi" -> "đôi", "kiểm" -> "kiêm", "số" ->
# "sô"), which plain Tesseract on the unrotated page keeps; Tesseract's own line finding copes with
# such a tilt. 10 text pages, CER / word recall %: corrected from 0.05° bilinear 2.21 / 94.2, from
# 0.5° 2.13 / 94.5, from 0.5° bicubic 2.04 / 94.6 (a 300-dpi page tilted 0.6°: 2.10 / 94.1 -> 1.26 /
# 95.9); synthetic clean / office / rough / phone 0.30 / 0.43 / 1.26 / 0.33 -> 0.30 / 0.39 / 1.25 / 0.31.
MIN_CORRECTION_DEGREES = 0.5

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
# Issue 19, the real set (bench/realscans): 3 px let Tesseract see faint tone marks over hats on 10
# real text pages (CER / word recall % 2.19 / 95.8 -> 2.11 / 96.3), but on all 62 real pages it
# made no difference (9.93 / 93.5 at 1 px, 9.93 / 93.6 at 3 px) and on a degraded synthetic decision
# it read the citizen ID 008085001234 as "0080850012344" (2 px too): 1 px stays.
READ_INK_MARGIN_PX = 1
# Below READ_FINE_DPI the margin is READ_INK_MARGIN_COARSE_PX: at 150 dpi a tone mark over a hat is
# 2-3 px, and the faint edge our threshold drops is what tells "tổ" from "tô", "đốc" from "độc" (plain
# Tesseract on the raw page read them). Issue 19, the 11 real 150-dpi pages of bench/realscans (word
# recall %, margin 1 -> 3): ct_qd383 94.3 -> 95.8, 96.5 -> 97.2; tn_qd358 94.9 -> 96.0, 93.6 -> 94.3,
# 96.0 -> 96.7, 94.2 -> 95.1, 91.1 -> 92.3, 92.7 -> 92.0; all 62 real pages 3.29 / 94.6 -> 3.26 / 94.7
# (CER / recall); 5 px: 3.36 / 94.7. The bench's synthetic sets (200-300 dpi) are not touched; the
# shared generator's pages made at 150 dpi lose a little (8 office: 2.70 -> 2.83 % CER, 8 rough:
# 11.47 -> 11.88 %, recall 95.0 -> 94.9 and 82.6 -> 82.8 %): real scans decide.
READ_FINE_DPI = 200.0
READ_INK_MARGIN_COARSE_PX = 3
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
READ_LARGE_LETTER_FACTOR = 1.5  # see read_scale


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
    cells: tuple[tables.Cell, ...] = ()  # ruled table cells, in the page's pixels (pipeline/tables.py)

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
    binary = binarise(flat)
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
        binary = binarise(flat)
        if colour is not None:
            colour = _rotate(colour, -skew, fill=(255, 255, 255))

    binary, letter_px = despeckle(binary, dpi=letter_scale.speckle_dpi(binary, dpi), place_dots=not low_resolution)

    workdir.mkdir(parents=True, exist_ok=True)
    ocr_image = workdir / f"{stem}_ocr.pbm"
    write_image(ocr_image, binary)
    colour_image = None
    if colour is not None:
        colour_image = workdir / f"{stem}_colour.ppm"
        write_image(colour_image, colour)
    read_image = workdir / f"{stem}_read.pgm"
    read_dpi = 0.0
    cells: list[tables.Cell] = []
    if line_crop:
        # As 8-bit PGM, not PBM: Leptonica skips whitespace after a PBM header, so a P4 whose
        # first byte of pixels is 0x09-0x0d or 0x20 (ink in the top-left corner of a tight
        # crop) is read shifted and refused ("pixReadStreamPnm: read error").
        write_image(read_image, binary)
    elif low_resolution and READ_GREY_BELOW_DPI:
        # An enlarged low-resolution page reads better as grey than thresholded: Tesseract's own
        # binarisation sees the interpolated edges (measured in READ_GREY_BELOW_DPI's comment).
        read, cells = tables.read_copy(grey, binary, dpi=dpi, letter_px=letter_px)
        write_image(read_image, read)
    else:
        # rules and dotted leaders out of Tesseract's copy (the PDF's page image keeps them)
        read, cells = tables.read_copy(ink_in_grey(binary, flat, margin=read_margin(dpi)), binary, dpi=dpi, letter_px=letter_px)
        scale = read_scale(dpi, letter_px)
        if scale < 1.0:
            read = cv2.resize(read, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            read_dpi = dpi * read.shape[1] / binary.shape[1]
        write_image(read_image, read)
    height, width = binary.shape
    return CleanedPage(ocr_image=ocr_image, colour_image=colour_image, rotation=rotation,
                       skew_degrees=round(float(skew), 2), has_colour=has_colour,
                       width=width, height=height, dpi=dpi, read_image=read_image, single_line=line_crop,
                       read_dpi=read_dpi, osd_run=osd_run, cells=tuple(cells))


# --- steps, each usable on its own ---------------------------------------------------------------

def read_scale(dpi: float, letter_px: float | None) -> float:
    """How much smaller than the page Tesseract's copy may be (1.0: the page itself; see READ_MAX_DPI).

    A page finer than READ_MAX_DPI is read at READ_MAX_DPI unless its letters would drop under
    READ_MIN_LETTER_PX. A page at READ_MAX_DPI or coarser is read as it is, unless its letters are
    over READ_LARGE_LETTER_FACTOR times that height: a small sheet photographed and enlarged as if
    it were A4 (the real receipts' letters were 43-46 px at "225 dpi"); it is read with its letters
    at READ_MIN_LETTER_PX, never under half its size. Issue 19: the three real receipts 58.2 / 50.5
    / 67.6 -> 65.5 / 55.4 / 72.1 % word recall (their CER 28.8 / 35.5 / 11.3 -> 31.9 / 46.4 / 13.7 %:
    the labels and values of the totals are read as columns), the other 59 real pages and the
    synthetic sets unchanged. With every page whose letters are over READ_MIN_LETTER_PX: a 200-dpi
    form in large print (38 px) 93.8 -> 95.0 % but 9.7 -> 14.8 % CER (dotted leaders read as
    letters), and one page's bogus 1000-px "letter" read it at 3 % of its size; hence the factor and
    the floor.
    """
    if letter_px is None:
        return 1.0
    if dpi > READ_MAX_DPI:
        scale = max(READ_MAX_DPI / dpi, READ_MIN_LETTER_PX / letter_px)
    elif 1 < letter_px / (READ_LARGE_LETTER_FACTOR * READ_MIN_LETTER_PX) <= 2:
        scale = max(0.5, READ_MIN_LETTER_PX / letter_px)
    else:
        scale = 1.0
    return scale if scale < 0.95 else 1.0  # a few per cent smaller saves nothing worth a resize


def read_margin(dpi: float) -> int:
    """The grey kept around the 1-bit ink in what Tesseract reads (see READ_INK_MARGIN_PX)."""
    return READ_INK_MARGIN_PX if dpi >= READ_FINE_DPI else READ_INK_MARGIN_COARSE_PX


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
    rows = np.count_nonzero(binarise(grey) == 0, axis=1) >= LINE_INK_ROW_SHARE * w
    edges = np.flatnonzero(np.diff(np.concatenate(([0], rows.astype(np.int8), [0]))))
    bands = edges[1::2] - edges[::2]
    return len(bands) > 0 and int(np.sum(bands >= LINE_BAND_SHARE * bands.max())) == 1


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


def _rotate(image: np.ndarray, angle: float, *, fill) -> np.ndarray:
    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    # bicubic: a tone mark over a hat is 2-3 px at 200 dpi, and bilinear smears it (MIN_CORRECTION_DEGREES)
    return cv2.warpAffine(image, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT,
                          borderValue=fill)
