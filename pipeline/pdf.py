"""Searchable PDF/A-2b e-files from cleaned page images and text pages of incoming PDFs; merged PDFs.

pikepdf is imported only by the ``pipeline/pdf*`` modules: this one assembles the e-file;
``pdf_compress`` encodes a scanned page (CCITT G4 for black-and-white pages; for pages with a seal
or signature, a G4 text mask over a small colour background, "mixed raster content");
``pdf_text`` lays the invisible words over it with Tesseract's glyphless font, so that
``pdftotext``, search and copy-paste give the Vietnamese text while the page looks exactly like
the scan; ``pdfa`` writes the PDF/A-2b metadata and output intent; ``pdf_read`` looks inside
incoming PDFs (pages that already carry text are copied as they are); ``pdf_sanitize`` removes what
an e-copy may not keep of a copied page's actions and attachments.
"""
from __future__ import annotations

import os
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name

from models import CorruptFile, EmptyFile
from pipeline import pdf_sanitize
from pipeline.pdf_compress import (  # noqa: F401  (RasterPage, encode_raster_page: callers' names)
    BACKGROUND_DPI,
    BACKGROUND_JPEG_QUALITY,
    EncodedRaster,
    RasterPage,
    encode_raster_page,
    g4_image,
    jpeg_image,
)
from pipeline.pdf_read import (  # noqa: F401  (re-exported: callers read incoming PDFs through pipeline.pdf)
    PdfInfo,
    PdfPageInfo,
    extract_pdf_pages,
    extract_text,
    inspect_pdf,
    open_pdf,
    pdf_page_count,
    short_error,
)
from pipeline.pdf_text import glyphless_font, num, text_layer
from pipeline.pdfa import PdfMetadata, add_srgb_output_intent, pdfa_problems, set_pdfa_metadata  # noqa: F401


@dataclass
class SourcePdfPage:
    """A page of an input PDF that already has a text layer: copied as is, not re-OCR'd."""

    source_pdf: Path
    index: int  # 0-based


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
        font = glyphless_font(pdf)
        for page in pages:
            if isinstance(page, SourcePdfPage):
                _append_source_page(pdf, page=page, sources=sources)
            else:
                _append_raster_page(pdf, page=page, font=font, background_dpi=background_dpi,
                                    jpeg_quality=jpeg_quality)
        pdf_sanitize.sanitize(pdf)
        set_pdfa_metadata(pdf, metadata=metadata)
        add_srgb_output_intent(pdf)
        pdf.save(tmp_path, object_stream_mode=pikepdf.ObjectStreamMode.generate, min_version="1.7")
        os.chmod(tmp_path, 0o644)  # mkstemp's 0600 would hide the e-file from other services
        os.replace(tmp_path, out_path)
    finally:
        pdf.close()
        for src in sources.values():
            src.close()
        tmp_path.unlink(missing_ok=True)
    return out_path


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
    place = f"q {num(width_pt)} 0 0 {num(height_pt)} 0 0 cm"
    xobjects = Dictionary()
    if enc.background_jpeg is None:
        xobjects.Im0 = g4_image(pdf, data=enc.g4, width=width_px, height=height_px, as_mask=False)
        draw = f"{place} /Im0 Do Q\n"
    else:
        xobjects.Bg0 = jpeg_image(pdf, data=enc.background_jpeg, size=enc.background_size)
        xobjects.Mask0 = g4_image(pdf, data=enc.g4, width=width_px, height=height_px, as_mask=True)
        # The mask is painted in black; its holes show the colour background.
        draw = f"{place} /Bg0 Do Q\n{place} 0 g /Mask0 Do Q\n"
    text = ""
    if page.ocr is not None and page.ocr.words:
        text = text_layer(page.ocr, width_pt=width_pt, height_pt=height_pt,
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
        src = sources[path] = open_pdf(path)
    if not 0 <= page.index < len(src.pages):
        raise ValueError(f"{path.name} has {len(src.pages)} pages; there is no page index {page.index}")
    pdf.pages.append(src.pages[page.index])
    # What PDF/A forbids (JavaScript, actions, embedded files) is removed from the whole e-copy by
    # pdf_sanitize.sanitize before it is saved; the report lists it (active_content).


def active_content(path: Path, index: int) -> list[str]:
    """What copying page ``index`` (0-based) of ``path`` into an e-file removes ([] = nothing)."""
    with open_pdf(Path(path)) as src:
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
            src = open_pdf(Path(path))
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
            set_pdfa_metadata(pdf, metadata=PdfMetadata(title=title, case_id=case_id, source_sha256="",
                                                         software_version=software_version))
            add_srgb_output_intent(pdf)
        else:
            pdf.docinfo[Name.Title] = pikepdf.String(title)
        pdf.save(tmp_path, object_stream_mode=pikepdf.ObjectStreamMode.generate, min_version="1.7")
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, out_path)
    except pikepdf.PdfError as exc:
        raise CorruptFile(out_path.name, short_error(exc)) from exc
    finally:
        pdf.close()
        for src in sources:
            src.close()
        tmp_path.unlink(missing_ok=True)
    return out_path


def pdf_outline(path: Path) -> list[tuple[str, int]]:
    """(title, 0-based page index) of each top-level bookmark of a PDF."""
    with open_pdf(Path(path)) as pdf:
        pages = {p.objgen: i for i, p in enumerate(pdf.pages)}
        out = []
        with pdf.open_outline() as outline:
            for item in outline.root:
                dest = item.destination
                page = dest[0] if isinstance(dest, pikepdf.Array) else None
                out.append((item.title, pages.get(page.objgen, -1) if page is not None else -1))
        return out


def _round(value: float) -> float:
    return round(value, 3)
