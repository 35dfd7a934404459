"""Searchable PDF/A-2b e-files from cleaned page images, and a look inside incoming PDFs.

This module and its helper ``pipeline.pdf_sanitize`` (what an e-copy may keep of a copied page's
actions and attachments) are the only ones that import pikepdf. A scanned page becomes one compact image
(CCITT G4 for black-and-white pages; for pages with a seal or signature, a G4 text mask over a
small colour background, "mixed raster content") under an invisible text layer placed word by
word with Tesseract's glyphless font, so that ``pdftotext``, search and copy-paste give the
Vietnamese text while the page looks exactly like the scan. Pages of incoming PDFs that already
carry text are copied as they are. Text extraction goes through poppler's ``pdftotext``.
"""
from __future__ import annotations

import functools
import io
import math
import os
import subprocess
import tempfile
import unicodedata
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pikepdf
from PIL import Image, ImageCms
from pikepdf import Array, Dictionary, Name

from models import CorruptFile, EmptyFile, EncryptedPdf, OcrPage
from pipeline import pdf_sanitize
from pipeline.pdf_inspect import check_pages

# Resolution of the colour background of a mixed-raster page: the seal stays legible, the
# text itself comes from the full-resolution G4 mask drawn over it.
BACKGROUND_DPI = float(os.environ.get("SOHOA_PDF_BACKGROUND_DPI", "150"))
BACKGROUND_JPEG_QUALITY = int(os.environ.get("SOHOA_PDF_JPEG_QUALITY", "55"))
# A black pixel of the OCR image whose colour-image chroma (max-min of R, G, B) reaches this is
# seal or signature ink: it stays in the colour background instead of being painted black.
INK_CHROMA = 60
# A page with at least this many non-space characters of extractable text counts as searchable.
MIN_TEXT_CHARS = 20
PDFTOTEXT_TIMEOUT = 120.0

SOHOA_XMP_NS = "https://sohoa.local/ns/efile/1.0/"
SOHOA_XMP_PREFIX = "sohoa"
_GLYPHLESS_CHAR_WIDTH = 500  # the glyphless font's one glyph is half an em wide (1024/2048)


@dataclass(frozen=True)
class PdfMetadata:
    """What the e-file says about itself: title, case, source checksum, who and what made it."""

    title: str
    case_id: str | None
    source_sha256: str
    software_version: str
    operator: str | None = None
    kind: str | None = None
    created: datetime | None = None  # UTC now when None
    result_code: str | None = None  # mã kết quả số hóa (models/result_code.py)


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


@dataclass
class SourcePdfPage:
    """A page of an input PDF that already has a text layer: copied as is, not re-OCR'd."""

    source_pdf: Path
    index: int  # 0-based


@dataclass
class PdfPageInfo:
    """One page of an incoming PDF: displayed size, resolution of its main image, and text."""

    index: int
    width_pt: float
    height_pt: float
    image_dpi: float | None
    has_text: bool


@dataclass
class PdfInfo:
    """What the reader needs to know about an incoming PDF before rasterising it."""

    page_count: int
    pages: list[PdfPageInfo]


# --------------------------------------------------------------------------------------------
# Building the searchable PDF/A


def build_searchable_pdf(
    pages: Sequence[RasterPage | SourcePdfPage],
    out_path: Path,
    *,
    metadata: PdfMetadata,
    background_dpi: float = BACKGROUND_DPI,
    jpeg_quality: int = BACKGROUND_JPEG_QUALITY,
) -> Path:
    """Write one searchable PDF/A-2b with the pages in order; atomic (temp file + rename)."""
    if not pages:
        raise ValueError("a searchable PDF needs at least one page")
    out_path = Path(out_path)
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp_name)
    sources: dict[Path, pikepdf.Pdf] = {}
    pdf = pikepdf.new()
    try:
        font = _glyphless_font(pdf)
        for page in pages:
            if isinstance(page, SourcePdfPage):
                _append_source_page(pdf, page=page, sources=sources)
            else:
                _append_raster_page(pdf, page=page, font=font, background_dpi=background_dpi,
                                    jpeg_quality=jpeg_quality)
        pdf_sanitize.sanitize(pdf)
        _set_pdfa_metadata(pdf, metadata=metadata)
        _add_srgb_output_intent(pdf)
        pdf.save(tmp_path, object_stream_mode=pikepdf.ObjectStreamMode.generate, min_version="1.7")
        os.chmod(tmp_path, 0o644)  # mkstemp's 0600 would hide the e-file from other services
        os.replace(tmp_path, out_path)
    finally:
        pdf.close()
        for src in sources.values():
            src.close()
        tmp_path.unlink(missing_ok=True)
    return out_path


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


def _append_raster_page(pdf: pikepdf.Pdf, *, page: RasterPage, font: pikepdf.Object,
                        background_dpi: float, jpeg_quality: int) -> None:
    """Add one scanned page: its image(s) and the invisible words over them."""
    if page.dpi <= 0:
        raise ValueError(f"impossible resolution {page.dpi} for {page.ocr_image.name}")
    enc = page.encoded
    if enc is None or (enc.background_dpi, enc.jpeg_quality) != (background_dpi, jpeg_quality):
        enc = encode_raster_page(page, background_dpi=background_dpi, jpeg_quality=jpeg_quality)
    width_px, height_px = enc.width_px, enc.height_px
    width_pt = width_px / page.dpi * 72.0
    height_pt = height_px / page.dpi * 72.0
    place = f"q {_num(width_pt)} 0 0 {_num(height_pt)} 0 0 cm"
    xobjects = Dictionary()
    if enc.background_jpeg is None:
        xobjects.Im0 = _g4_image(pdf, data=enc.g4, width=width_px, height=height_px, as_mask=False)
        draw = f"{place} /Im0 Do Q\n"
    else:
        xobjects.Bg0 = _jpeg_image(pdf, data=enc.background_jpeg, size=enc.background_size)
        xobjects.Mask0 = _g4_image(pdf, data=enc.g4, width=width_px, height=height_px, as_mask=True)
        # The mask is painted in black; its holes show the colour background.
        draw = f"{place} /Bg0 Do Q\n{place} 0 g /Mask0 Do Q\n"
    text = ""
    if page.ocr is not None and page.ocr.words:
        text = _text_layer(page.ocr, width_pt=width_pt, height_pt=height_pt,
                           width_px=page.ocr.width or width_px, height_px=page.ocr.height or height_px)
    content = pdf.make_stream((draw + text).encode("ascii"))
    resources = Dictionary(XObject=xobjects)
    if text:
        resources.Font = Dictionary(F1=font)
    page_dict = Dictionary(
        Type=Name.Page,
        MediaBox=Array([0, 0, _round(width_pt), _round(height_pt)]),
        Resources=resources,
        Contents=content,
    )
    pdf.pages.append(pikepdf.Page(pdf.make_indirect(page_dict)))


def _append_source_page(pdf: pikepdf.Pdf, *, page: SourcePdfPage,
                        sources: dict[Path, pikepdf.Pdf]) -> None:
    """Copy a page that already has text from its PDF (each source is opened once)."""
    path = Path(page.source_pdf)
    src = sources.get(path)
    if src is None:
        src = sources[path] = _open_pdf(path)
    if not 0 <= page.index < len(src.pages):
        raise ValueError(f"{path.name} has {len(src.pages)} pages; there is no page index {page.index}")
    pdf.pages.append(src.pages[page.index])
    # What PDF/A forbids (JavaScript, actions, embedded files) is removed from the whole e-copy by
    # pdf_sanitize.sanitize before it is saved; the report lists it (active_content).


def active_content(path: Path, index: int) -> list[str]:
    """What copying page ``index`` (0-based) of ``path`` into an e-file removes ([] = nothing)."""
    with _open_pdf(Path(path)) as src:
        if not 0 <= index < len(src.pages):
            return []
        found = pdf_sanitize.page_active_content(src.pages[index].obj)
        if index == 0:  # document-level parts are never copied (only pages are): say so once
            names = src.Root.get(Name.Names, Dictionary())
            if Name.JavaScript in names:
                found.append("document JavaScript")
            if Name.EmbeddedFiles in names:
                found.append("embedded files")
            if Name.OpenAction in src.Root and isinstance(src.Root.OpenAction, pikepdf.Dictionary):
                found.append("open action")
    return found


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


def _g4_image(pdf: pikepdf.Pdf, *, data: bytes, width: int, height: int, as_mask: bool) -> pikepdf.Stream:
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


def _jpeg_image(pdf: pikepdf.Pdf, *, data: bytes, size: tuple[int, int]) -> pikepdf.Stream:
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


# --------------------------------------------------------------------------------------------
# The invisible text layer


def _text_layer(ocr: OcrPage, *, width_pt: float, height_pt: float, width_px: int, height_px: int) -> str:
    """Content-stream operators that place each word invisibly over its box (render mode 3)."""
    sx = width_pt / width_px
    sy = height_pt / height_px
    ops = ["BT", "3 Tr"]
    for line in ocr.lines:
        top = min(w.box.top for w in line)
        bottom = max(w.box.top + w.box.height for w in line)
        heights = sorted(w.box.height for w in line)
        # One size and baseline per line keeps pdftotext's lines whole; a line far taller than
        # its words (left-over skew) falls back to each word's own box.
        per_word = (bottom - top) > 1.6 * heights[len(heights) // 2]
        for i, word in enumerate(line):
            w_top, w_bottom = (word.box.top, word.box.top + word.box.height) if per_word else (top, bottom)
            size = max((w_bottom - w_top) * sy, 0.5)
            x = word.box.left * sx
            y = height_pt - w_bottom * sy
            word_width = word.box.width * sx
            code = word.text.encode("utf-16-be")
            units = len(code) // 2
            ops.append(f"/F1 {_num(size)} Tf {_num(_stretch(word_width, size, units))} Tz "
                       f"1 0 0 1 {_num(x)} {_num(y)} Tm <{code.hex().upper()}> Tj")
            if i + 1 < len(line):
                # A real space, stretched over the gap, so extractors separate the words.
                gap = max(line[i + 1].box.left * sx - (x + word_width), 0.1)
                ops.append(f"{_num(_stretch(gap, size, 1))} Tz <0020> Tj")
    ops.append("ET")
    return "\n".join(ops) + "\n"


def _stretch(width_pt: float, size: float, units: int) -> float:
    """Horizontal scaling (percent) that makes ``units`` glyphless characters span ``width_pt``."""
    return 100.0 * width_pt * 1000.0 / (units * _GLYPHLESS_CHAR_WIDTH * size)


def _glyphless_font(pdf: pikepdf.Pdf) -> pikepdf.Object:
    """Tesseract's glyphless font as a Type0/Identity-H font whose codes are UTF-16 units."""
    font_file = pdf.make_stream(_glyphless_font_bytes())
    font_file.Length1 = len(_glyphless_font_bytes())
    descriptor = pdf.make_indirect(Dictionary(
        Type=Name.FontDescriptor, FontName=Name.GlyphLessFont, Flags=5,
        FontBBox=Array([0, 0, _GLYPHLESS_CHAR_WIDTH, 1000]), ItalicAngle=0, Ascent=1000,
        Descent=-1, CapHeight=1000, StemV=80, FontFile2=font_file,
    ))
    # Every code (= CID) draws glyph 1, the font's only real glyph.
    cid_to_gid = pdf.make_stream(zlib.compress(b"\x00\x01" * 65536, 9))
    cid_to_gid.Filter = Name.FlateDecode
    cid_font = pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.CIDFontType2, BaseFont=Name.GlyphLessFont,
        CIDSystemInfo=Dictionary(Registry=pikepdf.String("Adobe"), Ordering=pikepdf.String("Identity"),
                                 Supplement=0),
        FontDescriptor=descriptor, DW=_GLYPHLESS_CHAR_WIDTH, CIDToGIDMap=cid_to_gid,
    ))
    to_unicode = pdf.make_stream(_IDENTITY_UCS_CMAP)
    return pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.Type0, BaseFont=Name.GlyphLessFont, Encoding=Name("/Identity-H"),
        DescendantFonts=Array([cid_font]), ToUnicode=to_unicode,
    ))


_IDENTITY_UCS_CMAP = b"""/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def
/CMapName /Adobe-Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
1 beginbfrange
<0000> <FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end
"""


@functools.cache
def _glyphless_font_bytes() -> bytes:
    """Tesseract's pdf.ttf: $SOHOA_GLYPHLESS_FONT, $TESSDATA_PREFIX or the usual tessdata folders."""
    candidates = [os.environ.get("SOHOA_GLYPHLESS_FONT", "")]
    if os.environ.get("TESSDATA_PREFIX"):
        candidates.append(str(Path(os.environ["TESSDATA_PREFIX"]) / "pdf.ttf"))
    candidates += [str(p) for p in sorted(Path("/usr/share/tesseract-ocr").glob("*/tessdata/pdf.ttf"))]
    candidates += ["/usr/share/tessdata/pdf.ttf", "/usr/local/share/tessdata/pdf.ttf"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate).read_bytes()
    raise FileNotFoundError(
        "Tesseract's glyphless font pdf.ttf was not found; install tesseract-ocr or set SOHOA_GLYPHLESS_FONT"
    )


# --------------------------------------------------------------------------------------------
def merge_pdfs(
    parts: Sequence[tuple[Path, str]],
    out_path: Path,
    *,
    title: str | None = None,
    case_id: str | None = None,
    software_version: str = "source",
) -> Path:
    """One PDF of several, in order, with one bookmark (outline item) per part at its first page.

    ``title`` (default: the bookmark titles joined) goes into the XMP and DocInfo.

    ``parts`` are (path, bookmark title); pages are copied as they are (images, text layer,
    fonts). The result declares PDF/A-2b, with its own XMP and sRGB output intent, only when every
    part does; otherwise it is a plain PDF (a merged file of non-PDF/A parts claims nothing it is
    not). The viewer opens with the bookmarks shown. Atomic (temp file + rename).
    """
    out_path = Path(out_path)
    if not parts:
        raise EmptyFile(out_path.name)
    title = unicodedata.normalize("NFC", title or ", ".join(t for _, t in parts))[:500]
    fd, tmp_name = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp_name)
    sources: list[pikepdf.Pdf] = []
    pdf = pikepdf.new()
    try:
        all_pdfa = True
        bookmarks: list[tuple[str, int]] = []
        for path, part_title in parts:
            src = _open_pdf(Path(path))
            sources.append(src)
            meta = src.open_metadata()
            all_pdfa = all_pdfa and meta.get("pdfaid:part") == "2" and Name.OutputIntents in src.Root
            bookmarks.append((part_title, len(pdf.pages)))
            pdf.pages.extend(src.pages)
        with pdf.open_outline() as outline:
            for part_title, first in bookmarks:
                outline.root.append(pikepdf.OutlineItem(unicodedata.normalize("NFC", part_title), first))
        pdf.Root.PageMode = Name.UseOutlines
        pdf_sanitize.sanitize(pdf)  # e-files are clean already; a part from elsewhere must not bring actions
        if all_pdfa:
            _set_pdfa_metadata(pdf, metadata=PdfMetadata(title=title, case_id=case_id, source_sha256="",
                                                         software_version=software_version))
            _add_srgb_output_intent(pdf)
        else:
            pdf.docinfo[Name.Title] = pikepdf.String(title)
        pdf.save(tmp_path, object_stream_mode=pikepdf.ObjectStreamMode.generate, min_version="1.7")
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, out_path)
    except pikepdf.PdfError as exc:
        raise CorruptFile(out_path.name, _short(exc)) from exc
    finally:
        pdf.close()
        for src in sources:
            src.close()
        tmp_path.unlink(missing_ok=True)
    return out_path


def pdf_outline(path: Path) -> list[tuple[str, int]]:
    """(title, 0-based page index) of each top-level bookmark of a PDF."""
    with _open_pdf(Path(path)) as pdf:
        pages = {p.objgen: i for i, p in enumerate(pdf.pages)}
        out = []
        with pdf.open_outline() as outline:
            for item in outline.root:
                dest = item.destination
                page = dest[0] if isinstance(dest, pikepdf.Array) else None
                out.append((item.title, pages.get(page.objgen, -1) if page is not None else -1))
        return out


# PDF/A-2b metadata and output intent


def _set_pdfa_metadata(pdf: pikepdf.Pdf, *, metadata: PdfMetadata) -> None:
    """XMP with the PDF/A-2b identification and our own properties, mirrored in DocInfo."""
    created = metadata.created or datetime.now(timezone.utc)
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    stamp = created.isoformat(timespec="seconds")
    tool = f"sohoa {metadata.software_version}"
    own = _own_properties(metadata)
    pikepdf.models.metadata.PdfMetadata.register_xml_namespace(SOHOA_XMP_NS, SOHOA_XMP_PREFIX)
    with pdf.open_metadata(set_pikepdf_as_editor=False, update_docinfo=True) as meta:
        meta["pdfaid:part"] = "2"
        meta["pdfaid:conformance"] = "B"
        meta["dc:title"] = metadata.title
        meta["dc:format"] = "application/pdf"
        meta["xmp:CreateDate"] = stamp
        meta["xmp:ModifyDate"] = stamp
        meta["xmp:MetadataDate"] = stamp
        meta["xmp:CreatorTool"] = tool
        meta["pdf:Producer"] = f"{tool}; pikepdf {pikepdf.__version__}"
        keywords = "; ".join(v for v in (metadata.case_id, metadata.kind) if v)
        if keywords:
            meta["pdf:Keywords"] = keywords
        for name, value, _ in own:
            meta[f"{SOHOA_XMP_PREFIX}:{name}"] = value
    # PDF/A only accepts properties outside the standard schemas when the XMP describes them.
    xmp = pdf.Root.Metadata.read_bytes()
    end = xmp.rindex(b"</rdf:RDF>")
    pdf.Root.Metadata.write(xmp[:end] + _extension_schema(own) + xmp[end:])
    for name, value, _ in own:
        pdf.docinfo[Name("/Sohoa" + name[0].upper() + name[1:])] = pikepdf.String(value)


_OWN_PROPERTIES = {
    "caseId": "Dossier code (ma ho so) of the case this e-file belongs to",
    "sourceSha256": "SHA-256 of the scanned source file, hex",
    "softwareVersion": "Version of the sohoa software that made this file",
    "operator": "Scanning-desk operator who converted the paper",
    "kind": "Kind of document (thanh phan ho so)",
    "resultCode": "Digitization result code (ma ket qua so hoa) of this e-file",
}


def _own_properties(metadata: PdfMetadata) -> list[tuple[str, str, str]]:
    """(name, value, description) of each of our XMP properties that has a value."""
    values = {
        "caseId": metadata.case_id,
        "sourceSha256": metadata.source_sha256,
        "softwareVersion": metadata.software_version,
        "operator": metadata.operator,
        "kind": metadata.kind,
        "resultCode": metadata.result_code,
    }
    return [(name, value, _OWN_PROPERTIES[name]) for name, value in values.items() if value]


def _extension_schema(own: list[tuple[str, str, str]]) -> bytes:
    """The pdfaExtension description of our namespace, as one rdf:Description."""
    props = "".join(
        "<rdf:li rdf:parseType=\"Resource\">"
        f"<pdfaProperty:name>{name}</pdfaProperty:name>"
        "<pdfaProperty:valueType>Text</pdfaProperty:valueType>"
        "<pdfaProperty:category>external</pdfaProperty:category>"
        f"<pdfaProperty:description>{description}</pdfaProperty:description>"
        "</rdf:li>"
        for name, _, description in own
    )
    return (
        "<rdf:Description rdf:about=\"\""
        " xmlns:pdfaExtension=\"http://www.aiim.org/pdfa/ns/extension/\""
        " xmlns:pdfaSchema=\"http://www.aiim.org/pdfa/ns/schema#\""
        " xmlns:pdfaProperty=\"http://www.aiim.org/pdfa/ns/property#\">"
        "<pdfaExtension:schemas><rdf:Bag><rdf:li rdf:parseType=\"Resource\">"
        "<pdfaSchema:schema>sohoa e-file</pdfaSchema:schema>"
        f"<pdfaSchema:namespaceURI>{SOHOA_XMP_NS}</pdfaSchema:namespaceURI>"
        f"<pdfaSchema:prefix>{SOHOA_XMP_PREFIX}</pdfaSchema:prefix>"
        f"<pdfaSchema:property><rdf:Seq>{props}</rdf:Seq></pdfaSchema:property>"
        "</rdf:li></rdf:Bag></pdfaExtension:schemas>"
        "</rdf:Description>\n"
    ).encode("utf-8")


def _add_srgb_output_intent(pdf: pikepdf.Pdf) -> None:
    """The sRGB output intent PDF/A needs for device colour (our JPEGs are DeviceRGB)."""
    profile = pdf.make_stream(_srgb_icc())
    profile.N = 3
    intent = Dictionary(
        Type=Name.OutputIntent, S=Name.GTS_PDFA1,
        OutputConditionIdentifier=pikepdf.String("sRGB"),
        Info=pikepdf.String("sRGB IEC61966-2.1"),
        DestOutputProfile=profile,
    )
    pdf.Root.OutputIntents = Array([pdf.make_indirect(intent)])


@functools.cache
def _srgb_icc() -> bytes:
    """An sRGB ICC profile made by LittleCMS (display class, version 4: accepted by PDF/A-2)."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def pdfa_problems(path: Path) -> list[str]:
    """A quick structural self-check of a built e-file's PDF/A-2b markers ([] = none found).

    Not a validator (veraPDF is one): it checks what this module promises to write, so a flow
    can refuse to store a file that lost them.
    """
    problems: list[str] = []
    with _open_pdf(Path(path)) as pdf:
        if pdf.is_encrypted:
            problems.append("the file is encrypted")
        if Name.ID not in pdf.trailer:
            problems.append("the trailer has no /ID")
        meta = pdf.open_metadata()
        if meta.get("pdfaid:part") != "2" or meta.get("pdfaid:conformance") != "B":
            problems.append("the XMP does not declare PDF/A-2b (pdfaid:part 2, pdfaid:conformance B)")
        if not meta.get("dc:title"):
            problems.append("the XMP has no dc:title")
        intents = pdf.Root.get(Name.OutputIntents, Array())
        if not any(i.get(Name.S) == Name.GTS_PDFA1 and Name.DestOutputProfile in i for i in intents):
            problems.append("there is no /GTS_PDFA1 output intent with an ICC profile")
        for number, page in enumerate(pdf.pages, start=1):
            fonts = page.obj.get(Name.Resources, Dictionary()).get(Name.Font, Dictionary())
            for key, font in fonts.items():
                if not _font_embedded(font):
                    problems.append(f"page {number}: font {key} is not embedded")
    return problems


def _font_embedded(font: pikepdf.Object) -> bool:
    """True when the font (or its descendant, for Type0) carries its font program."""
    if font.get(Name.Subtype) == Name.Type3:
        return True
    if font.get(Name.Subtype) == Name.Type0:
        font = font.DescendantFonts[0]
    descriptor = font.get(Name.FontDescriptor)
    return descriptor is not None and any(
        k in descriptor for k in (Name.FontFile, Name.FontFile2, Name.FontFile3)
    )


# --------------------------------------------------------------------------------------------
# Incoming PDFs


def inspect_pdf(path: Path, *, max_pages: int | None = None, max_image_pixels: int = 80_000_000) -> PdfInfo:
    """Page sizes, image resolution and presence of text; typed errors for unusable PDFs.

    ``max_pages``: a PDF with more pages is refused (TooManyPages) before any page is looked at;
    every page passes pipeline/pdf_inspect.py's bounds before its content is parsed or rendered.
    """

    path = Path(path)
    if path.stat().st_size == 0:
        raise EmptyFile(path.name)
    with _open_pdf(path) as pdf:
        try:
            page_count = len(pdf.pages)
            if page_count == 0:
                raise CorruptFile(path.name, "the PDF has no pages")
            if max_pages is not None and page_count > max_pages:
                from models.errors import TooManyPages

                raise TooManyPages(path.name, page_count, max_pages)
            check_pages(pdf, path.name, max_image_pixels=max_image_pixels)
            texts = _page_texts(path, page_count=page_count)
            infos = []
            for index, page in enumerate(pdf.pages):
                width_pt, height_pt = _displayed_size(page)
                infos.append(PdfPageInfo(
                    index=index, width_pt=width_pt, height_pt=height_pt,
                    image_dpi=_largest_image_dpi(page),
                    has_text=_non_space(texts[index]) >= MIN_TEXT_CHARS,
                ))
        except pikepdf.PdfError as exc:
            raise CorruptFile(path.name, _short(exc)) from exc
    return PdfInfo(page_count=page_count, pages=infos)


def extract_text(path: Path) -> list[str]:
    """Text of each page (NFC) as pdftotext reads it, in reading order."""
    path = Path(path)
    with _open_pdf(path) as pdf:
        page_count = len(pdf.pages)
    return _page_texts(path, page_count=page_count)


def extract_pdf_pages(source: Path, pages: Sequence[int], dest: Path) -> Path:
    """Copy the 1-based ``pages`` of ``source`` into a new PDF at ``dest``, losslessly.

    Page objects (content streams, images, fonts) are copied as they are, never decoded or
    re-encoded; the output is deterministic (same input and pages, same bytes), so a dossier cut
    from a stack twice is the same original.
    """
    source, dest = Path(source), Path(dest)
    with _open_pdf(source) as src, pikepdf.new() as out:
        count = len(src.pages)
        for n in pages:
            if not 1 <= n <= count:
                raise CorruptFile(source.name, f"page {n} is not in the file ({count} pages)")
            out.pages.append(src.pages[n - 1])
        dest.parent.mkdir(parents=True, exist_ok=True)
        out.save(dest, deterministic_id=True, stream_decode_level=pikepdf.StreamDecodeLevel.none,
                 compress_streams=False, object_stream_mode=pikepdf.ObjectStreamMode.preserve)
    return dest


def pdf_page_count(path: Path) -> int:
    """Number of pages of a PDF (typed errors for encrypted or damaged files)."""
    with _open_pdf(Path(path)) as pdf:
        return len(pdf.pages)


def _open_pdf(path: Path) -> pikepdf.Pdf:
    """Open a PDF or raise EncryptedPdf / CorruptFile."""
    try:
        return pikepdf.open(path)
    except pikepdf.PasswordError:
        raise EncryptedPdf(path.name) from None
    except pikepdf.PdfError as exc:
        raise CorruptFile(path.name, _short(exc)) from exc


def _page_texts(path: Path, *, page_count: int) -> list[str]:
    """One pdftotext run for the whole file, split at its page breaks; '' when it cannot read."""
    try:
        proc = subprocess.run(
            ["pdftotext", "-q", "-enc", "UTF-8", str(path), "-"],
            capture_output=True, timeout=PDFTOTEXT_TIMEOUT, check=False,
        )
    except subprocess.TimeoutExpired:
        return [""] * page_count
    if proc.returncode != 0:
        # E.g. copying forbidden by the owner password: the pages will simply be OCR'd.
        return [""] * page_count
    parts = proc.stdout.decode("utf-8", errors="replace").split("\f")
    texts = [unicodedata.normalize("NFC", p).strip() for p in parts[:page_count]]
    return texts + [""] * (page_count - len(texts))


def _non_space(text: str) -> int:
    return sum(1 for ch in text if not ch.isspace())


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."


def _displayed_size(page: pikepdf.Page) -> tuple[float, float]:
    """Width and height in points as the page is shown (after /Rotate and /UserUnit)."""
    box = [float(v) for v in page.mediabox]
    unit = float(page.obj.get(Name.UserUnit, 1))
    width = abs(box[2] - box[0]) * unit
    height = abs(box[3] - box[1]) * unit
    rotate = int(page.obj.get(Name.Rotate, 0)) % 360
    return (height, width) if rotate in (90, 270) else (width, height)


_Matrix = tuple[float, float, float, float, float, float]
_IDENTITY: _Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def _concat(m: _Matrix, ctm: _Matrix) -> _Matrix:
    """m × ctm, the way ``cm`` updates the current transformation matrix."""
    a, b, c, d, e, f = m
    A, B, C, D, E, F = ctm
    return (a * A + b * C, a * B + b * D, c * A + d * C, c * B + d * D,
            e * A + f * C + E, e * B + f * D + F)


def _largest_image_dpi(page: pikepdf.Page) -> float | None:
    """Pixels per inch, across, of the image drawn largest on the page (None: no image)."""
    unit = float(page.obj.get(Name.UserUnit, 1))
    drawn = list(_drawn_images(page.obj, resources=page.obj.get(Name.Resources), ctm=_IDENTITY,
                               depth=0, seen=set()))
    if not drawn:
        return None
    area, pixels, width_px, width_pt = max(drawn)
    if width_pt <= 0:
        return None
    return round(width_px / (width_pt * unit / 72.0), 1)


def _drawn_images(holder: pikepdf.Object, *, resources: pikepdf.Object | None, ctm: _Matrix,
                  depth: int, seen: set[tuple[int, int]]) -> Iterator[tuple[float, int, int, float]]:
    """(drawn area pt², pixels, width px, drawn width pt) of each image, following form XObjects."""
    if depth > 8:
        return
    try:
        instructions = pikepdf.parse_content_stream(holder)
    except pikepdf.PdfError:
        return
    stack: list[_Matrix] = []
    xobjects = resources.get(Name.XObject) if resources is not None else None
    for instruction in instructions:
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            image = instruction.iimage
            yield _drawn(ctm, int(image.width), int(image.height))
            continue
        op = str(instruction.operator)
        if op == "q":
            stack.append(ctm)
        elif op == "Q":
            ctm = stack.pop() if stack else ctm
        elif op == "cm" and len(instruction.operands) == 6:
            ctm = _concat(tuple(float(v) for v in instruction.operands), ctm)  # type: ignore[arg-type]
        elif op == "Do" and xobjects is not None and instruction.operands:
            xobject = xobjects.get(instruction.operands[0])
            if not isinstance(xobject, pikepdf.Stream):
                continue
            subtype = xobject.get(Name.Subtype)
            if subtype == Name.Image:
                yield _drawn(ctm, int(xobject.get(Name.Width, 0)), int(xobject.get(Name.Height, 0)))
            elif subtype == Name.Form and xobject.objgen not in seen:
                seen.add(xobject.objgen)
                matrix = xobject.get(Name.Matrix)
                form_ctm = _concat(tuple(float(v) for v in matrix), ctm) if matrix else ctm  # type: ignore[arg-type]
                yield from _drawn_images(xobject, resources=xobject.get(Name.Resources, resources),
                                         ctm=form_ctm, depth=depth + 1, seen=seen)


def _drawn(ctm: _Matrix, width_px: int, height_px: int) -> tuple[float, int, int, float]:
    """How big the unit square of an image comes out on the page under ``ctm``."""
    a, b, c, d, _, _ = ctm
    return (abs(a * d - b * c), width_px * height_px, width_px, math.hypot(a, b))


def _num(value: float) -> str:
    """A compact decimal for content streams."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"


def _round(value: float) -> float:
    return round(value, 3)

