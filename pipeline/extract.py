"""Cut pages out of a scan file without losing anything: one dossier of a stack becomes its own original.

PDF pages are copied as they are (pipeline/pdf.py, pikepdf); TIFF frames and images are written
to a multi-page TIFF with lossless compression (CCITT G4 for bilevel pages, Deflate otherwise),
keeping their pixels, mode and resolution. Both are deterministic: the same stack and pages give
the same bytes, so cutting a stack again finds the dossier already stored.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from models import CorruptFile
from pipeline import pdf
from pipeline.reader import EXTENSIONS, sniff_format


def extension_of_extract(source: Path) -> str:
    """The file extension pages cut from ``source`` are written with: ``pdf`` or ``tif``."""
    return "pdf" if sniff_format(Path(source)) == "pdf" else "tif"


def page_count(source: Path) -> int:
    """Pages (frames) in a scan file."""
    source = Path(source)
    if sniff_format(source) == "pdf":
        return pdf.pdf_page_count(source)
    try:
        with Image.open(source) as im:
            return getattr(im, "n_frames", 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise CorruptFile(source.name, str(exc)) from exc


def extract_pages(source: Path, pages: Sequence[int], dest: Path) -> Path:
    """Write the 1-based ``pages`` of ``source`` (in that order) to ``dest`` losslessly; returns ``dest``.

    ``dest`` should end in ``extension_of_extract(source)``.
    """
    source, dest = Path(source), Path(dest)
    if not pages:
        raise ValueError("no pages to extract")
    kind = sniff_format(source)
    if kind == "pdf":
        return pdf.extract_pdf_pages(source, pages, dest)
    frames: list[Image.Image] = []
    try:
        with Image.open(source) as im:
            count = getattr(im, "n_frames", 1)
            for n in pages:
                if not 1 <= n <= count:
                    raise CorruptFile(source.name, f"page {n} is not in the file ({count} pages)")
                im.seek(n - 1)
                # The reader turns the first frame by its EXIF orientation; the copy keeps what it shows.
                frame = ImageOps.exif_transpose(im) if n == 1 else im.copy()
                frame.load()
                dpi = im.info.get("dpi")
                if dpi:
                    frame.info["dpi"] = dpi
                frames.append(frame)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, CorruptFile):
            raise
        raise CorruptFile(source.name, str(exc)) from exc
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with open(tmp, "w+b") as out:
        first, *rest = frames
        _save_tiff(first, out, append=rest)
    tmp.replace(dest)
    return dest


def _save_tiff(first: Image.Image, out, *, append: list[Image.Image]) -> None:  # type: ignore[no-untyped-def]
    # Pillow picks one compression for all frames: G4 only when every frame is bilevel.
    frames = [first, *append]
    bilevel = all(f.mode == "1" for f in frames)
    ready = [f if f.mode in ("1", "L", "RGB", "RGBA", "CMYK", "P", "LA", "I;16") else f.convert("RGB")
             for f in frames]
    kwargs = {"compression": "group4" if bilevel else "tiff_adobe_deflate"}
    dpi = first.info.get("dpi")
    if dpi:
        kwargs["dpi"] = dpi
    ready[0].save(out, format="TIFF", save_all=True, append_images=ready[1:], **kwargs)


__all__ = ["EXTENSIONS", "extension_of_extract", "extract_pages", "page_count"]
