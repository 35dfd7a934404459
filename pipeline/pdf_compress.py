"""Compressing a scanned page's images for the e-file: CCITT G4, or a G4 text mask over a JPEG (MRC)."""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from PIL import Image
from pikepdf import Dictionary, Name

from models import CorruptFile, OcrPage

# Resolution of the colour background of a mixed-raster page: the seal stays legible, the
# text itself comes from the full-resolution G4 mask drawn over it.
BACKGROUND_DPI = float(os.environ.get("SOHOA_PDF_BACKGROUND_DPI", "150"))
BACKGROUND_JPEG_QUALITY = int(os.environ.get("SOHOA_PDF_JPEG_QUALITY", "55"))
# A black pixel of the OCR image whose colour-image chroma (max-min of R, G, B) reaches this is
# seal or signature ink: it stays in the colour background instead of being painted black.
INK_CHROMA = 60


@dataclass
class RasterPage:
    """A scanned page after cleaning: the 1-bit image Tesseract read, its colour twin and words."""

    ocr_image: Path
    colour_image: Path | None
    dpi: float
    ocr: OcrPage | None
    # The page's images already compressed (``encode_raster_page``), so a worker thread does this
    # while the PDF itself is assembled in one thread at the end; None: compressed when it is built.
    encoded: EncodedRaster | None = None


@dataclass(frozen=True)
class EncodedRaster:
    """A raster page's compressed images: the G4 bitmap (the page, or the black text mask over a
    colour background) and, for a colour page, the background JPEG; with the settings used."""

    width_px: int
    height_px: int
    g4: bytes
    background_jpeg: bytes | None
    background_size: tuple[int, int] | None  # (width, height) of the background image
    background_dpi: float
    jpeg_quality: int


def encode_raster_page(page: RasterPage, *, background_dpi: float = BACKGROUND_DPI,
                       jpeg_quality: int = BACKGROUND_JPEG_QUALITY) -> EncodedRaster:
    """Compress one scanned page's images for the PDF (the costly part of adding a page)."""
    if page.dpi <= 0:
        raise ValueError(f"impossible resolution {page.dpi} for {page.ocr_image.name}")
    bilevel = _load_bilevel(page.ocr_image)
    width_px, height_px = bilevel.size
    if page.colour_image is None:
        return EncodedRaster(width_px, height_px, _g4_bytes(_ink_array(bilevel)), None, None,
                             background_dpi, jpeg_quality)
    ink, background = _separate_layers(bilevel, colour_path=page.colour_image, dpi=page.dpi,
                                       background_dpi=background_dpi)
    return EncodedRaster(width_px, height_px, _g4_bytes(ink), _jpeg_bytes(background, quality=jpeg_quality),
                         (background.shape[1], background.shape[0]), background_dpi, jpeg_quality)


def _load_bilevel(path: Path) -> Image.Image:
    """The OCR image as 1-bit, thresholded (never dithered) if it was stored as grey."""
    with Image.open(path) as im:
        im.load()
        if im.mode == "1":
            return im.copy()
        return im.convert("L").convert("1", dither=Image.Dither.NONE)


def _ink_array(bilevel: Image.Image) -> np.ndarray:
    """True where the 1-bit image is black."""
    return ~np.asarray(bilevel, dtype=bool)


def _g4_bytes(ink: np.ndarray) -> bytes:
    """CCITT G4 data for a bitmap in which True is ink, in one strip, ink coded as black runs."""
    # libtiff codes 0 bits as white runs, so handing it "ink = 1" makes paper the white runs:
    # smaller, and it decodes to black-on-white with PDF's default /BlackIs1 false.
    buf = io.BytesIO()
    Image.fromarray(ink).save(buf, format="TIFF", compression="group4", strip_size=2**31 - 1)
    with Image.open(io.BytesIO(buf.getvalue())) as tiff:
        offsets = tiff.tag_v2[273]
        counts = tiff.tag_v2[279]
    if len(offsets) != 1:
        raise RuntimeError(f"expected one G4 strip, libtiff wrote {len(offsets)}")
    data = buf.getvalue()
    return data[offsets[0]:offsets[0] + counts[0]]


def g4_image(pdf: pikepdf.Pdf, *, data: bytes, width: int, height: int, as_mask: bool) -> pikepdf.Stream:
    """A G4 image XObject: a 1-bit grey image, or a stencil mask painted in the fill colour."""
    stream = pdf.make_stream(data)
    stream.Type = Name.XObject
    stream.Subtype = Name.Image
    stream.Width = width
    stream.Height = height
    stream.BitsPerComponent = 1
    stream.Filter = Name.CCITTFaxDecode
    stream.DecodeParms = Dictionary(K=-1, Columns=width, Rows=height, BlackIs1=False)
    if as_mask:
        stream.ImageMask = True
    else:
        stream.ColorSpace = Name.DeviceGray
    return stream


def _jpeg_bytes(rgb: np.ndarray, *, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="JPEG", quality=quality, optimize=True, subsampling=0)
    return buf.getvalue()


def jpeg_image(pdf: pikepdf.Pdf, *, data: bytes, size: tuple[int, int]) -> pikepdf.Stream:
    """An RGB JPEG image XObject."""
    width, height = size
    stream = pdf.make_stream(data)
    stream.Type = Name.XObject
    stream.Subtype = Name.Image
    stream.Width = width
    stream.Height = height
    stream.ColorSpace = Name.DeviceRGB
    stream.BitsPerComponent = 8
    stream.Filter = Name.DCTDecode
    return stream


def _separate_layers(bilevel: Image.Image, *, colour_path: Path, dpi: float,
                     background_dpi: float) -> tuple[np.ndarray, np.ndarray]:
    """Split a colour page into a black text mask (full resolution) and a small colour background.

    Full-resolution work stays in 8 bits (the page is read once by OpenCV, in BGR, and only the
    small background is turned to RGB): a float copy of an A4 page at 300 dpi is 100 MB.
    """
    ink = _ink_array(bilevel)
    height, width = ink.shape
    bgr = cv2.imread(str(colour_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise CorruptFile(colour_path.name, "the colour page image cannot be read")
    if bgr.shape[:2] != (height, width):
        # The cleaner should hand over twins of one size; a mismatch must not shift the seal.
        bgr = cv2.resize(bgr, (width, height), interpolation=cv2.INTER_LINEAR)
    # Coloured ink (red seal, blue signature) is not text: it keeps its colour in the background.
    text = ink & (_chroma(bgr) < INK_CHROMA)
    hidden = cv2.dilate(text.view(np.uint8), np.ones((3, 3), np.uint8))
    keep = cv2.compare(hidden, 0, cv2.CMP_EQ)  # 255 where the paper or seal shows
    factor = max(1.0, dpi / background_dpi)
    # Averages of visible pixels only: the area average of (colour x keep) over that of keep.
    num = _shrink(cv2.bitwise_and(bgr, bgr, mask=keep), factor)
    del bgr
    den = _shrink(keep, factor)
    small = _fill_holes(num, den)
    # Uncoloured paper becomes white: the JPEG then spends its bytes on the seal, not on the paper's
    # tone, lamp gradient and sensor noise (on the synthetic seal pages at 200 dpi this took the
    # background from ~155 KB to ~25 KB a page). "Paper" = weakly coloured and not much darker than
    # the page's typical paper level; seal and signature ink are strongly coloured and stay.
    smooth = cv2.medianBlur(small, 3)
    grey = cv2.cvtColor(smooth, cv2.COLOR_BGR2GRAY)
    paper_level = float(np.percentile(grey, 75))
    paper = cv2.bitwise_and(cv2.compare(_chroma(smooth), PAPER_MAX_CHROMA, cv2.CMP_LT),
                            cv2.compare(grey, paper_level - PAPER_MAX_DARKER, cv2.CMP_GT))
    small = cv2.max(small, cv2.merge([paper, paper, paper]))  # 255 on paper, unchanged elsewhere
    return text, cv2.cvtColor(small, cv2.COLOR_BGR2RGB)


def _shrink(image: np.ndarray, factor: float) -> np.ndarray:
    """Area-average ``image`` down by ``factor``. Given as a scale, not as a target size: OpenCV then
    takes its exact-ratio path for a whole factor (300 dpi to 150), ~10x faster than the general one
    it takes for 2481 -> 1240 px (a ratio of 2.0008)."""
    return cv2.resize(image, None, fx=1 / factor, fy=1 / factor, interpolation=cv2.INTER_AREA)
# Background pixels weaker in colour than this (max-min of R,G,B) and at most PAPER_MAX_DARKER below
# the paper level count as paper. Synthetic paper noise (sigma 8 per channel) stays under ~20 after
# the 3x3 median; the red seal's ink measures 60-170.
PAPER_MAX_CHROMA = 35
PAPER_MAX_DARKER = 45


def _chroma(rgb: np.ndarray) -> np.ndarray:
    """max(R, G, B) - min(R, G, B) per pixel, uint8: 0 for greys, large for saturated ink."""
    r, g, b = cv2.split(rgb)
    return cv2.subtract(cv2.max(cv2.max(r, g), b), cv2.min(cv2.min(r, g), b))


def _fill_holes(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """Normalised convolution: colour under the text, filled from ever wider surroundings (uint8).

    ``num``: area averages of colour x visibility (uint8, 3 channels); ``den``: of visibility (0-255).
    Integer arithmetic throughout: window sums fit 16 bits (15 x 15 x 255), and OpenCV's division
    rounds and saturates in one pass; float copies of the 150-dpi background cost ~4x the time.
    """
    known = den > 0.05 * 255
    den3 = cv2.merge([den, den, den])
    out = cv2.divide(num, den3, scale=255)
    holes = ~known
    unknown = holes.view(np.uint8) * np.uint8(255)
    out = cv2.max(out, cv2.merge([unknown, unknown, unknown]))
    # Text strokes at background resolution are a few pixels wide: two passes fill them. What is
    # left (large solid areas) stays white, as the black mask covers it anyway; the wider passes
    # cost ~0.15 s a page for nothing visible.
    for k in (5, 15):
        if not holes.any():
            break
        sum_num = cv2.boxFilter(num, cv2.CV_16U, (k, k), normalize=False)
        sum_den = cv2.boxFilter(den3, cv2.CV_16U, (k, k), normalize=False)
        fill = holes & (sum_den[..., 0] > 1e-3 * 255 * k * k)
        filled = cv2.divide(sum_num, sum_den, scale=255)
        out[fill] = np.minimum(filled[fill], 255)
        holes &= ~fill
    return out
