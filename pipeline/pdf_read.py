"""A look inside incoming PDFs: page sizes, image resolution, text, page count and lossless page copies."""
from __future__ import annotations

import math
import subprocess
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from pikepdf import Name

from models import CorruptFile, EmptyFile, EncryptedPdf
from pipeline.pdf_inspect import check_pages

# A page with at least this many non-space characters of extractable text counts as searchable.
MIN_TEXT_CHARS = 20
PDFTOTEXT_TIMEOUT = 120.0


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


def inspect_pdf(path: Path, *, max_pages: int | None = None, max_image_pixels: int = 80_000_000) -> PdfInfo:
    """Page sizes, image resolution and presence of text; typed errors for unusable PDFs.

    ``max_pages``: a PDF with more pages is refused (TooManyPages) before any page is looked at;
    every page passes pipeline/pdf_inspect.py's bounds before its content is parsed or rendered.
    """

    path = Path(path)
    if path.stat().st_size == 0:
        raise EmptyFile(path.name)
    with open_pdf(path) as pdf:
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
            raise CorruptFile(path.name, short_error(exc)) from exc
    return PdfInfo(page_count=page_count, pages=infos)


def extract_text(path: Path) -> list[str]:
    """Text of each page (NFC) as pdftotext reads it, in reading order."""
    path = Path(path)
    with open_pdf(path) as pdf:
        page_count = len(pdf.pages)
    return _page_texts(path, page_count=page_count)


def extract_pdf_pages(source: Path, pages: Sequence[int], dest: Path) -> Path:
    """Copy the 1-based ``pages`` of ``source`` into a new PDF at ``dest``, losslessly.

    Page objects (content streams, images, fonts) are copied as they are, never decoded or
    re-encoded; the output is deterministic (same input and pages, same bytes), so a dossier cut
    from a stack twice is the same original.
    """
    source, dest = Path(source), Path(dest)
    with open_pdf(source) as src, pikepdf.new() as out:
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
    with open_pdf(Path(path)) as pdf:
        return len(pdf.pages)


def open_pdf(path: Path) -> pikepdf.Pdf:
    """Open a PDF or raise EncryptedPdf / CorruptFile."""
    try:
        return pikepdf.open(path)
    except pikepdf.PasswordError:
        raise EncryptedPdf(path.name) from None
    except pikepdf.PdfError as exc:
        raise CorruptFile(path.name, short_error(exc)) from exc


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


def short_error(exc: BaseException) -> str:
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
