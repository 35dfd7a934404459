"""The reading scale of a page from its letters, whatever the size of the paper.

A file without a resolution of its own was taken for an A4 sheet (pipeline/reader.py,
``estimate_dpi``): right for a scanned A4 page, wrong for anything smaller. A 657×80-pixel piece
of a 200-dpi decision (two lines of normal-size text) came out at 56 dpi, was called "rescan" and
read as nothing (issue 19); ID cards, receipts, A5 forms and certificates are counter documents
too. The letters know better: body text on official paper is 12-14 pt (Decree 30/2020: 13-14 pt),
so the height of a typical letter gives the scale.
"""
from __future__ import annotations

import cv2
import numpy as np

MM_PER_INCH = 25.4
# The upper-quartile height of a page's letter-sized ink marks (capitals, ascenders, accented
# letters), in mm: 35-37 px at 300 dpi on the 13-pt synthetic sets (pipeline/clean.py,
# READ_MIN_LETTER_PX), i.e. ~3.05 mm; 12-14 pt text gives 2.8-3.3 mm, so the estimate is within
# ~10 % for official text and reads 9-pt text as if it were ~200 dpi (its letters' real size in pixels).
LETTER_MM = 3.05
MIN_LETTERS = 12       # fewer letter-sized marks than this: the letters cannot tell
MIN_LETTER_PX = 4      # a mark shorter than this is a dot, a comma or noise at any resolution
# The A4 guess is kept unless the letters disagree by more than this factor (a scanned A4 page
# without metadata reads 11-14 pt: within it).
DISAGREE_FACTOR = 1.5
COMMON_DPI = (72, 96, 100, 150, 200, 240, 300, 400, 600)
MAX_WORK_PX = 2000     # measured on a copy at most this many pixels on its long side


def letter_height_px(grey: np.ndarray) -> float | None:
    """Upper-quartile height in pixels of the letter-sized ink marks of a grey page (None: too few)."""
    h, w = grey.shape[:2]
    scale = min(1.0, MAX_WORK_PX / max(h, w))
    small = grey if scale >= 1.0 else cv2.resize(grey, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    _, ink = cv2.threshold(small, 0, 255, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    n, _, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    if n <= 1:
        return None
    bw, bh = stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    area = stats[1:, cv2.CC_STAT_AREA]
    # letters: not a dot, not a rule (long and thin), not a frame or a table's grid (hollow)
    letter = ((bh >= MIN_LETTER_PX * scale) & (bw <= 3 * bh) & (bh <= 4 * np.maximum(bw, 1))
              & (area >= 0.15 * bw * bh))
    if int(letter.sum()) < MIN_LETTERS:
        return None
    return float(np.percentile(bh[letter], 75)) / scale


def dpi_from_letters(grey: np.ndarray) -> float | None:
    """The resolution at which the page's letters are official text's size (None: no letters to tell)."""
    px = letter_height_px(grey)
    if px is None:
        return None
    raw = px / (LETTER_MM / MM_PER_INCH)
    nearest = min(COMMON_DPI, key=lambda d: abs(d - raw))
    return float(nearest) if abs(nearest - raw) / nearest < 0.1 else round(raw, 1)


# Resolutions that image software writes when it knows none (Photoshop, PIL/poppler's PNG writer,
# screenshots): a 1-bit 300-dpi decision page cut out of its PDF by pdfimages says 72 dpi
# (bench/realscans' qng_ct07_p1, vietadmin1_p1), and was enlarged 2x as "low resolution" and read
# with its tone marks lost. Such a header is checked against the letters like a missing one; a
# real 72- or 96-dpi scan has letters of that size and keeps it.
SOFTWARE_DEFAULT_DPI = (72.0, 96.0)


def doubtful(dpi: float) -> bool:
    """Whether a file's resolution is one image software writes by default (see SOFTWARE_DEFAULT_DPI)."""
    return round(dpi) in SOFTWARE_DEFAULT_DPI


def reading_dpi(grey: np.ndarray, guessed_dpi: float) -> float:
    """The page's resolution when the file gave none: the A4 guess, unless the letters say otherwise."""
    found = dpi_from_letters(grey)
    if found is None:
        return guessed_dpi
    if max(found / guessed_dpi, guessed_dpi / found) > DISAGREE_FACTOR:
        return found
    return guessed_dpi


# The speckle pass (pipeline/clean.py, despeckle) sizes dots, marks and letters in mm for 12-14 pt
# text; on smaller print (letters under this share of LETTER_MM) it takes the tone marks and hats
# of 5-7 pt letters for dust. There it works at the resolution that makes the letters 13-pt-sized.
# The measure moves with the text (0.78-1.02 on the 13-pt rough pages: a list of short lines reads
# small): at 0.8 a rough list page lost its semicolons (1.2 -> 3.4 % CER), hence 0.6 (6 pt: ~0.46).
SMALL_PRINT_SHARE = 0.6


def speckle_dpi(binary: np.ndarray, dpi: float) -> float:
    """The resolution the speckle pass should size marks at: ``dpi``, or less for small print."""
    px = letter_height_px(binary)
    if px is None:
        return dpi
    share = px / (LETTER_MM / MM_PER_INCH * dpi)
    return dpi * share if share < SMALL_PRINT_SHARE else dpi
