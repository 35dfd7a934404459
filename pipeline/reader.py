"""Read a counter-scanner file (PDF, multi-page TIFF, JPEG, PNG) into page images on local disk.

Each page is written once, uncompressed (PGM/PPM), so the later stages (preflight, cleaning,
Tesseract) read it without decoding costs. The format is decided from the file's bytes, not its
name: a text file called ``.pdf`` is refused as what it is. pdf2image is imported only here.
"""
from __future__ import annotations

import hashlib
import io
import os
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

import numpy as np

from models import CorruptFile, EmptyFile, ImageTooLarge, UnsupportedFormat
from models.errors import InputFileError, MissingFile
from models.errors import FileTooLarge, NotAPageShape, TooManyPages
from pipeline import pdf
from pipeline.limits import check_input, printable

# Input limits, checked from the file's headers before any pixel is decoded (each can be set in
# the environment). A page: A3 at 600 dpi is ~70 MP; beyond 80 MP a file is a mistake, not a scan,
# and decoding it takes gigabytes of memory. A file: the pages' intermediates stay on local disk
# until the PDF is built (~3 bytes a pixel), so 2.5 GP (~290 A4 pages at 300 dpi) bounds the
# temporary space to a few GB. Pages: a one-stop-shop dossier has tens of pages, a bound register
# a few hundred.
MAX_PIXELS = 80_000_000
MAX_FILE_PIXELS = 2_500_000_000
MAX_PAGES = 1000
# Tesseract cannot read a side over 32767 px; a page longer than 25 times its width is a strip
# (a scanner fault or a crafted file), not a page. SOHOA_MAX_ASPECT lifts the shape limit for
# line crops (the benchmark's real-lines set); real input keeps it.
MAX_SIDE = 32_000
MAX_ASPECT = 25.0
# A file's own DPI is trusted within this range; outside it (or missing) it is estimated from A4.
PLAUSIBLE_DPI = (72.0, 1200.0)
A4_LONG_SIDE_IN = 11.69
COMMON_DPI = (100, 150, 200, 240, 300, 400, 600)
# A PDF page without images (vector-only, e.g. a born-digital form) is rasterised at this DPI.
DEFAULT_PDF_DPI = 300
# A PDF page with its own text is rendered at this DPI when the desk assembles pages into one TIFF.
TEXT_PAGE_DPI = 300

# Pillow's own bomb guard stays on, as a second line behind the header checks below: it refuses
# (DecompressionBombError) what is over twice its bound, which read_pages sets to the page limit
# (our check refuses first, with a sentence). Its warning between one and two times the bound says
# what our check says better, so it is not printed.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# A damaged file is refused in one sentence; Pillow's own warnings about it ("Truncated File Read",
# "Corrupt EXIF data") would print a site-packages path on the operator's screen.
warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")
# pdftoppm renders one page; longer than this is a runaway (a crafted page), not a scan.
RENDER_TIMEOUT = 300

_MAGIC = (
    (b"%PDF-", "pdf"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
)
EXTENSIONS = {"pdf": "pdf", "tiff": "tif", "jpeg": "jpg", "png": "png"}


@dataclass(frozen=True)
class RawPage:
    """One page as read from the source file, written to ``path`` (or kept as a PDF page with text)."""

    number: int  # 1-based in the source file
    path: Path | None  # PGM/PPM on local disk; None for a PDF page that already has text
    dpi: float
    dpi_estimated: bool
    width: int
    height: int
    source_pdf: Path | None = None  # set when the page is a PDF page with its own text layer
    source_index: int | None = None


@dataclass(frozen=True)
class Limits:
    """What one input file may hold; from SOHOA_MAX_PAGES, SOHOA_MAX_PIXELS, SOHOA_MAX_FILE_PIXELS,
    SOHOA_MAX_ASPECT."""

    pages: int = MAX_PAGES
    page_pixels: int = MAX_PIXELS
    file_pixels: int = MAX_FILE_PIXELS
    aspect: float = MAX_ASPECT

    @classmethod
    def from_env(cls) -> Limits:
        def get(name: str, default: int) -> int:
            raw = os.environ.get(name, "").strip().replace("_", "")
            return int(raw) if raw.isdigit() and int(raw) > 0 else default

        try:
            aspect = float(os.environ.get("SOHOA_MAX_ASPECT", "").strip() or MAX_ASPECT)
        except ValueError:
            aspect = MAX_ASPECT
        return cls(pages=get("SOHOA_MAX_PAGES", MAX_PAGES), page_pixels=get("SOHOA_MAX_PIXELS", MAX_PIXELS),
                   file_pixels=get("SOHOA_MAX_FILE_PIXELS", MAX_FILE_PIXELS),
                   aspect=aspect if aspect > 0 else MAX_ASPECT)

    def check_page(self, name: str, number: int, width: int, height: int) -> None:
        """Refuse a page too large, too small or not shaped like paper."""
        if width * height > self.page_pixels:
            raise ImageTooLarge(name, width, height, self.page_pixels)
        if width < 16 or height < 16:
            raise CorruptFile(name, f"page {number} is only {width}×{height} pixels")
        if max(width, height) > MAX_SIDE or max(width, height) / min(width, height) > self.aspect:
            raise NotAPageShape(name, number, width, height)

    def check_file(self, name: str, pages: int, pixels: int) -> None:
        """Refuse a file with too many pages or pixels in all."""
        if pages > self.pages:
            raise TooManyPages(name, pages, self.pages)
        if pixels > self.file_pixels:
            raise FileTooLarge(name, pixels, self.file_pixels)


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, streamed."""
    h = hashlib.sha256()
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise MissingFile(str(path)) from None
    with f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sniff_format(path: Path) -> str:
    """The file's real format from its first bytes: pdf, tiff, jpeg or png.

    First the bounds every entry point shares (pipeline/limits.py): a regular file we may open,
    within the upload limit; a FIFO or a device is named as what it is and never opened."""
    check_input(path)
    with open(path, "rb") as f:
        head = f.read(1024)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if b"%PDF-" in head:  # PDFs may carry junk before the header
        return "pdf"
    raise UnsupportedFormat(printable(path.name), "unrecognised content")


def estimate_dpi(width: int, height: int) -> float:
    """DPI assuming the page is A4 portrait or landscape, snapped to a common scanner setting."""
    raw = max(width, height) / A4_LONG_SIDE_IN
    nearest = min(COMMON_DPI, key=lambda d: abs(d - raw))
    return float(nearest) if abs(nearest - raw) / nearest < 0.06 else round(raw, 1)


def _file_dpi(im: Image.Image) -> float | None:
    dpi = im.info.get("dpi")
    if not dpi:
        return None
    try:
        # PNG stores pixels per metre: 200 dpi comes back as 199.9996, which must not read as "< 200".
        x = round(float(dpi[0] if isinstance(dpi, tuple) else dpi), 1)
    except (TypeError, ValueError):
        return None
    return x if PLAUSIBLE_DPI[0] <= x <= PLAUSIBLE_DPI[1] else None


def read_pages(source: Path, workdir: Path) -> Iterator[RawPage]:
    """Yield the pages of ``source`` one by one, each written to ``workdir``; typed errors for bad files."""
    kind = sniff_format(source)
    # A page limit lifted in the environment lifts Pillow's guard with it, never switches it off.
    Image.MAX_IMAGE_PIXELS = max(Limits.from_env().page_pixels, MAX_PIXELS)
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "pdf":
        yield from _read_pdf(source, workdir)
    else:
        yield from _read_image(source, workdir)


def _read_image(source: Path, workdir: Path) -> Iterator[RawPage]:
    limits = Limits.from_env()
    try:
        im = Image.open(source)
    except Image.DecompressionBombError:
        raise ImageTooLarge(source.name, *_header_size(source), limits.page_pixels) from None
    except UnidentifiedImageError as exc:
        raise CorruptFile(source.name, "not a readable image") from exc
    except (OSError, SyntaxError, ValueError, TypeError) as exc:  # ValueError: a zTXt over MAX_TEXT_CHUNK
        raise CorruptFile(source.name, _first_line(exc)) from exc
    with im:
        # Every frame's size from the headers first: a file over the limits is refused whole,
        # before a single pixel is decoded or written to disk.
        index = 0
        try:
            frames = getattr(im, "n_frames", 1)
            if frames > limits.pages:
                raise TooManyPages(source.name, frames, limits.pages)
            total = 0
            for index in range(frames):
                im.seek(index)
                width, height = im.size
                limits.check_page(source.name, index + 1, width, height)
                total += width * height
            limits.check_file(source.name, frames, total)
        except EOFError as exc:
            raise CorruptFile(source.name, f"frame {index + 1} is missing") from exc
        except Image.DecompressionBombError:
            raise ImageTooLarge(source.name, *im.size, limits.page_pixels) from None
        except (OSError, SyntaxError, ValueError, TypeError) as exc:  # TypeError: a cut TIFF's frame
            raise CorruptFile(source.name, f"frame {index + 1}: {_first_line(exc)}") from exc
        for index in range(frames):
            try:
                im.seek(index)
            except EOFError as exc:
                raise CorruptFile(source.name, f"frame {index + 1} is missing") from exc
            except (OSError, SyntaxError, ValueError, TypeError) as exc:
                raise CorruptFile(source.name, f"frame {index + 1}: {_first_line(exc)}") from exc
            dpi = _file_dpi(im)
            try:
                if index == 0:
                    # In place: the decoded page is written out as it is, not copied first (an A4
                    # colour page at 300 dpi is 26 MB).
                    ImageOps.exif_transpose(im, in_place=True)
                    frame = im
                else:
                    frame = im.copy()
                frame.load()
            except (OSError, SyntaxError, ValueError, TypeError) as exc:
                raise CorruptFile(source.name, f"frame {index + 1}: {_first_line(exc)}") from exc
            yield _write_frame(frame, source, workdir, index + 1, dpi)


def _first_line(exc: BaseException) -> str:
    """An exception's first line without tool noise (poppler's "Syntax Error…" lines), at most 200 characters."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    kept = [ln for ln in lines if not ln.startswith(("Syntax Error", "Syntax Warning", "Internal Error"))]
    text = (kept or lines or [type(exc).__name__])[0]
    return text if len(text) <= 200 else text[:197] + "..."


_GUARD_LOCK = threading.Lock()


def _header_size(source: Path) -> tuple[int, int]:
    """The size a file Pillow's guard refused announces, read from its header alone (no pixel decoded)."""
    with _GUARD_LOCK:
        saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
        try:
            with Image.open(source) as im:
                return im.size
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _to_grey8(frame: Image.Image) -> Image.Image:
    """8-bit grey from 16-bit or 32-bit grey, scaled (not clipped: clipping turns a 16-bit scan white)."""
    if frame.mode in ("1", "L", "LA"):
        return frame if frame.mode == "L" else frame.convert("L")
    arr = np.asarray(frame)
    if frame.mode == "F":
        top = float(np.nanmax(arr)) if arr.size else 0.0
        scaled = arr * (255.0 if top <= 1.0 else 255.0 / max(top, 1.0))
    else:  # I;16 variants and I (16-bit PNG/TIFF grey)
        top = int(arr.max()) if arr.size else 0
        scaled = arr / 257.0 if top > 255 else arr
    return Image.fromarray(np.clip(np.rint(scaled), 0, 255).astype(np.uint8), mode="L")


def _write_frame(frame: Image.Image, source: Path, workdir: Path, number: int, dpi: float | None) -> RawPage:
    if frame.mode in ("1", "L", "I", "F", "LA") or frame.mode.startswith("I;16"):
        frame, ext = _to_grey8(frame), "pgm"
    else:
        frame, ext = (frame if frame.mode == "RGB" else frame.convert("RGB")), "ppm"
    width, height = frame.size
    estimated = dpi is None
    if estimated:
        dpi = estimate_dpi(width, height)
    path = workdir / f"{number:04d}_raw.{ext}"
    frame.save(path)
    return RawPage(number=number, path=path, dpi=float(dpi), dpi_estimated=estimated, width=width, height=height)


def _read_pdf(source: Path, workdir: Path) -> Iterator[RawPage]:
    from pdf2image import convert_from_path
    from pdf2image.exceptions import PDFPageCountError, PDFPopplerTimeoutError, PDFSyntaxError

    limits = Limits.from_env()
    info = pdf.inspect_pdf(source, max_pages=limits.pages, max_image_pixels=limits.page_pixels)
    limits.check_file(source.name, info.page_count, 0)
    plan = []
    for page in info.pages:  # every page's size at its render DPI, before anything is rendered
        dpi = min(max(page.image_dpi or DEFAULT_PDF_DPI, 72.0), 600.0)
        if page.has_text:
            # Copied as it is into the e-file, but rendered at TEXT_PAGE_DPI when the desk assembles
            # pages: a 3000 pt "page" with one line of text is a 12500 px square bomb all the same.
            dpi = max(dpi, TEXT_PAGE_DPI)
        width, height = round(page.width_pt / 72 * dpi), round(page.height_pt / 72 * dpi)
        limits.check_page(source.name, page.index + 1, width, height)
        plan.append(0 if page.has_text else width * height)
    limits.check_file(source.name, info.page_count, sum(plan))
    for page in info.pages:
        number = page.index + 1
        if page.has_text:
            # Already searchable (born digital or OCR'd before): copy the page, never OCR it twice.
            yield RawPage(number=number, path=None, dpi=page.image_dpi or 0.0, dpi_estimated=False,
                          width=int(page.width_pt), height=int(page.height_pt),
                          source_pdf=source, source_index=page.index)
            continue
        dpi = page.image_dpi or DEFAULT_PDF_DPI
        estimated = page.image_dpi is None
        dpi = min(max(dpi, 72.0), 600.0)
        try:
            paths = convert_from_path(
                source, dpi=dpi, first_page=number, last_page=number, output_folder=workdir,
                fmt="ppm", paths_only=True, output_file=f"{number:04d}_pdf", timeout=RENDER_TIMEOUT,
            )
        except PDFPopplerTimeoutError as exc:
            raise CorruptFile(source.name, f"page {number} could not be drawn within {RENDER_TIMEOUT} s") from exc
        except (PDFPageCountError, PDFSyntaxError) as exc:
            raise CorruptFile(source.name, f"page {number}: {_first_line(exc)}") from exc
        if not paths:
            raise CorruptFile(source.name, f"page {number} could not be rendered")
        rendered = Path(paths[0])
        target = workdir / f"{number:04d}_raw{rendered.suffix}"
        os.replace(rendered, target)
        with Image.open(target) as im:
            width, height = im.size
        yield RawPage(number=number, path=target, dpi=float(dpi), dpi_estimated=estimated, width=width, height=height)


def looks_complete(path: Path) -> bool:
    """True when the file ends the way its format ends, so a scanner is done writing it.

    Scanners write slowly and some pre-allocate: a stable size alone is not proof. PDFs end with
    %%EOF, JPEGs with the EOI marker, PNGs with an IEND chunk; TIFF has no trailer, so a TIFF is
    complete when Pillow can walk every frame.
    """
    try:
        kind = sniff_format(path)
        size = path.stat().st_size
        with open(path, "rb") as f:
            f.seek(max(0, size - 2048))
            tail = f.read()
    except (UnsupportedFormat, EmptyFile, MissingFile, FileNotFoundError):
        return False  # not (yet) a scan, or gone: another watcher on the same inbox took it
    except InputFileError:
        return True  # over the upload limit, not a regular file, unreadable: taken now, refused in one sentence
    if kind == "pdf":
        return b"%%EOF" in tail
    if kind == "jpeg":
        return tail.rstrip(b"\x00").endswith(b"\xff\xd9")
    if kind == "png":
        return b"IEND" in tail[-16:]
    try:
        with Image.open(path) as im:
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
            im.load()
    except (OSError, EOFError, SyntaxError, ValueError):
        return False
    return True


def render_page_png(pdf_path: Path, page: int, *, width: int = 300) -> bytes:
    """One page (1-based) of a PDF rendered by Poppler as a PNG ``width`` pixels wide (thumbnails, page views)."""
    from pdf2image import convert_from_path
    from pdf2image.exceptions import PDFPageCountError, PDFSyntaxError

    try:
        images = convert_from_path(str(pdf_path), first_page=page, last_page=page, size=(width, None),
                                   fmt="png", timeout=60)
    except (PDFPageCountError, PDFSyntaxError) as exc:
        raise CorruptFile(pdf_path.name, str(exc).splitlines()[0] if str(exc) else "") from exc
    if not images:
        raise CorruptFile(pdf_path.name, f"no page {page}")
    out = io.BytesIO()
    images[0].save(out, format="PNG", optimize=True)
    return out.getvalue()


def assemble_pages(parts: list[tuple[Path, int]], out: Path, workdir: Path) -> Path:
    """One multi-page TIFF of the given (file, 1-based page) pairs, in order, pixels and DPI unchanged.

    The desk's original when an operator combined several files or replaced a page: lossless
    (Deflate), each page at its own resolution, so the stored original shows exactly what was scanned.
    A PDF page with its own text is rendered at 300 dpi.
    """
    wanted: dict[Path, set[int]] = {}
    for path, page in parts:
        wanted.setdefault(Path(path), set()).add(page)
    frames: dict[tuple[Path, int], tuple[Path, float]] = {}
    for index, (path, numbers) in enumerate(wanted.items()):
        for raw in read_pages(path, workdir / f"assemble{index:03d}"):
            if raw.number not in numbers:
                continue
            if raw.path is None:
                from pdf2image import convert_from_path

                # Its size at this DPI passed Limits.check_page when read_pages looked at it.
                [image] = convert_from_path(path, dpi=TEXT_PAGE_DPI, first_page=raw.number, last_page=raw.number,
                                           timeout=RENDER_TIMEOUT)
                rendered = workdir / f"assemble{index:03d}" / f"{raw.number:04d}_text.png"
                image.save(rendered)
                frames[(path, raw.number)] = (rendered, float(TEXT_PAGE_DPI))
            else:
                frames[(path, raw.number)] = (raw.path, raw.dpi)
    images = []
    for path, page in parts:
        frame, dpi = frames[(Path(path), page)]
        im = Image.open(frame)
        im.encoderinfo = {"dpi": (dpi, dpi)}
        images.append((im, dpi))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    first, first_dpi = images[0]
    first.save(tmp, format="TIFF", compression="tiff_adobe_deflate", dpi=(first_dpi, first_dpi), save_all=True,
               append_images=[im for im, _ in images[1:]])
    for im, _ in images:
        im.close()
    os.replace(tmp, out)
    return out
