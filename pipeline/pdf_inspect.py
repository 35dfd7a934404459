"""Bounds on an incoming PDF page, checked before anything decodes, parses or renders it (issue 21).

One of the pipeline/pdf* modules (the only ones that import pikepdf): this module only reads
what a page *says* — its boxes and numbers, the length its streams inflate to (counted in bounded
chunks, never inflated whole), the pixels its images claim, whether a JPEG ends — and refuses a
page that would make a decoder run without bound or a scan come out silently wrong:

* a box, /Rotate or /UserUnit that is not a number, a page of zero size (no silent US Letter);
* content streams (the page's and its forms') over ``MAX_CONTENT_BYTES`` inflated or
  ``MAX_CONTENT_OPS`` operators (millions of tiny rectangles; a 1 MB stream inflating to 1 GiB);
* an image claiming more pixels than a page may have (the rasteriser would decode it whole);
* a JPEG image cut short (poppler draws what is there and the lost lines go unnoticed).
"""
from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator
from decimal import Decimal

import pikepdf
from pikepdf import Name

from models.errors import CorruptFile
from models.file_errors import OverBound


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip().replace("_", "")
    return int(raw) if raw.isdigit() and int(raw) > 0 else default


# A scanned page draws one to three images (~100 bytes of operators); a born-digital page of text
# a few thousand operators (10–100 KB). 16 MB / 200 000 operators is far above both and keeps the
# content-stream parse of the inspection (pikepdf builds an object per operand) under ~300 MB.
MAX_CONTENT_BYTES = 16 * 1024 * 1024
MAX_CONTENT_OPS = 200_000
# Smaller than this is not a page (a box of 0 × 0, or a few points).
MIN_PAGE_PT = 10.0
_MAX_FORM_DEPTH = 8
# How much a filter can multiply a stream's length: with these, the inflated size is bounded by the
# raw length, so pikepdf may decode it. Flate (no bound) is inflated in counted chunks instead.
_RATIO = {"/ASCIIHexDecode": 1, "/AHx": 1, "/ASCII85Decode": 5, "/A85": 5, "/RunLengthDecode": 128, "/RL": 128,
          "/LZWDecode": 4096, "/LZW": 4096}
_OPERATOR = re.compile(rb"(?<![/\w.+-])[A-Za-z'\"*][A-Za-z0-9*']{0,2}(?![\w.])")


def check_page(page: pikepdf.Page, name: str, number: int, *, max_image_pixels: int) -> None:
    """Refuse page ``number`` of PDF ``name`` when a part of it is malformed or over a bound."""
    obj = page.obj
    box = _inherited(obj, Name.MediaBox)
    if box is None:
        raise CorruptFile(name, f"page {number} has no page size (/MediaBox)")
    width, height = _box_size(box, name, number)
    if width < MIN_PAGE_PT or height < MIN_PAGE_PT:
        raise CorruptFile(name, f"page {number} is {width:g} × {height:g} points, which is not a page")
    for key, label in ((Name.Rotate, "/Rotate"), (Name.UserUnit, "/UserUnit")):
        value = _inherited(obj, key) if key == Name.Rotate else obj.get(key)
        if value is not None and not _is_number(value):
            raise CorruptFile(name, f"page {number}: {label} is not a number")
    unit = obj.get(Name.UserUnit)
    if unit is not None and not 0 < float(unit) <= 75_000:
        raise CorruptFile(name, f"page {number}: /UserUnit {float(unit):g} is not a page scale")
    budget = [MAX_CONTENT_BYTES, MAX_CONTENT_OPS]
    for holder, resources in _content_holders(obj):
        for stream in _streams(holder):
            _spend(stream, budget, name, number)
        _check_images(resources, name, number, max_image_pixels)


def check_pages(pdf: pikepdf.Pdf, name: str, *, max_image_pixels: int) -> None:
    """Refuse PDF ``name`` when qpdf had to invent a page size or a page is malformed or over a bound."""
    check_repairs(pdf, name)
    for index, page in enumerate(pdf.pages):
        check_page(page, name, index + 1, max_image_pixels=max_image_pixels)


def check_repairs(pdf: pikepdf.Pdf, name: str) -> None:
    """Refuse a PDF whose page size qpdf had to invent on opening it (it silently makes it US Letter)."""
    for warning in pdf.get_warnings():
        if "MediaBox is undefined" in str(warning):
            raise CorruptFile(name, "a page has no usable page size (its /MediaBox is missing or not four numbers)")


def _inherited(obj: pikepdf.Object, key: Name) -> pikepdf.Object | None:
    """A page attribute, from the page or the nearest /Pages node above it (PDF 7.7.3.4)."""
    seen = 0
    while isinstance(obj, pikepdf.Dictionary) and seen < 64:
        if key in obj:
            return obj.get(key)
        obj = obj.get(Name.Parent)
        seen += 1
    return None


def _is_number(value: object) -> bool:
    return isinstance(value, (int, Decimal, float)) and not isinstance(value, bool)


def _box_size(box: pikepdf.Object, name: str, number: int) -> tuple[float, float]:
    if not isinstance(box, pikepdf.Array) or len(box) != 4 or not all(_is_number(v) for v in box):
        raise CorruptFile(name, f"page {number}: its page size (/MediaBox) is not four numbers")
    x0, y0, x1, y1 = (float(v) for v in box)
    return abs(x1 - x0), abs(y1 - y0)


def _content_holders(page: pikepdf.Object) -> Iterator[tuple[pikepdf.Object, pikepdf.Object | None]]:
    """The page and every form XObject it can reach, each with the resources its content uses."""
    todo = [(page, page.get(Name.Resources), 0)]
    seen: set[tuple[int, int]] = set()
    while todo:
        holder, resources, depth = todo.pop()
        yield holder, resources
        xobjects = resources.get(Name.XObject) if isinstance(resources, pikepdf.Dictionary) else None
        if not isinstance(xobjects, pikepdf.Dictionary) or depth >= _MAX_FORM_DEPTH:
            continue
        for _key, xobject in xobjects.items():
            if (isinstance(xobject, pikepdf.Stream) and xobject.get(Name.Subtype) == Name.Form
                    and xobject.objgen not in seen):
                if xobject.objgen != (0, 0):
                    seen.add(xobject.objgen)
                todo.append((xobject, xobject.get(Name.Resources, resources), depth + 1))


def _streams(holder: pikepdf.Object) -> list[pikepdf.Stream]:
    """The content streams of a page (/Contents: one stream or an array) or the form itself."""
    if isinstance(holder, pikepdf.Stream):
        return [holder]
    contents = holder.get(Name.Contents)
    if isinstance(contents, pikepdf.Stream):
        return [contents]
    if isinstance(contents, pikepdf.Array):
        return [s for s in contents if isinstance(s, pikepdf.Stream)]
    return []


def _filters(stream: pikepdf.Stream) -> list[str]:
    value = stream.get(Name.Filter)
    if value is None:
        return []
    if isinstance(value, pikepdf.Array):
        return [str(v) for v in value]
    return [str(value)]


def _spend(stream: pikepdf.Stream, budget: list[int], name: str, number: int) -> None:
    """Take one content stream's inflated size and operator count from ``budget``; refuse when spent."""
    data = bounded_bytes(stream, budget[0])
    if data is None:
        limit = MAX_CONTENT_BYTES // (1024 * 1024)
        raise OverBound(name, f"the drawing instructions of page {number} inflate to more than {limit} MB",
                        f"lệnh vẽ của trang {number} giải nén ra hơn {limit} MB")
    budget[0] -= len(data)
    budget[1] -= sum(1 for _ in _OPERATOR.finditer(data))
    if budget[1] < 0:
        raise OverBound(name, f"page {number} holds more than {MAX_CONTENT_OPS:,} drawing instructions",
                        f"trang {number} có hơn {MAX_CONTENT_OPS:,} lệnh vẽ")


def bounded_bytes(stream: pikepdf.Stream, cap: int) -> bytes | None:
    """A stream's decoded bytes when they are at most ``cap`` long; None when longer (never inflated whole)."""
    filters = _filters(stream)
    raw = stream.read_raw_bytes()
    if not filters:
        return raw if len(raw) <= cap else None
    ratio = 1
    for f in filters:
        ratio *= _RATIO.get(f, 0)
    if ratio and len(raw) * ratio <= cap:
        data = _decode(stream)
        return data if len(data) <= cap else None
    if filters in (["/FlateDecode"], ["/Fl"]) and _no_predictor(stream):
        return _inflate(raw, cap)
    if len(raw) <= cap // 1024:  # an odd filter chain on a small stream: a bomb would need ratios > 1024
        data = _decode(stream)
        return data if len(data) <= cap else None
    return None


def _decode(stream: pikepdf.Stream) -> bytes:
    try:
        return stream.read_bytes()
    except pikepdf.PdfError:
        return b""  # undecodable: poppler and qpdf draw nothing of it either


def _no_predictor(stream: pikepdf.Stream) -> bool:
    parms = stream.get(Name.DecodeParms)
    return not isinstance(parms, pikepdf.Dictionary) or int(parms.get(Name.Predictor, 1) or 1) == 1


def _inflate(raw: bytes, cap: int) -> bytes | None:
    """Inflate zlib data in chunks, stopping once the output would pass ``cap``."""
    inflater = zlib.decompressobj()
    out = bytearray()
    pending = raw
    try:
        while pending and not inflater.eof:
            out += inflater.decompress(pending, cap + 1 - len(out))
            if len(out) > cap:
                return None
            pending = inflater.unconsumed_tail
    except zlib.error:
        pass  # a damaged tail: what inflated is what a reader shows
    return bytes(out)


def _check_images(resources: pikepdf.Object | None, name: str, number: int, max_pixels: int) -> None:
    xobjects = resources.get(Name.XObject) if isinstance(resources, pikepdf.Dictionary) else None
    if not isinstance(xobjects, pikepdf.Dictionary):
        return
    for _key, image in xobjects.items():
        if not isinstance(image, pikepdf.Stream) or image.get(Name.Subtype) != Name.Image:
            continue
        width, height = image.get(Name.Width, 0), image.get(Name.Height, 0)
        if not (_is_number(width) and _is_number(height)):
            raise CorruptFile(name, f"page {number}: an image's size is not a number")
        width, height = int(width), int(height)
        if width * height > max_pixels:
            raise OverBound(name, f"page {number} holds an image of {width}×{height} pixels, over the limit of "
                                  f"{max_pixels:,} pixels (SOHOA_MAX_PIXELS)",
                            f"trang {number} có ảnh {width}×{height} điểm ảnh, vượt giới hạn {max_pixels:,} điểm "
                            "ảnh (SOHOA_MAX_PIXELS)")
        if _filters(image) in (["/DCTDecode"], ["/DCT"]) and not _jpeg_complete(image.read_raw_bytes()):
            raise CorruptFile(name, f"page {number}: its image is cut short (the JPEG data ends early, lines are "
                                    "missing)")


def _jpeg_complete(data: bytes) -> bool:
    """True when JPEG data ends with its end-of-image marker (a little trailing padding allowed). Coded
    data never holds FF D9 (an FF there is stuffed as FF 00), so a cut stream has none near its end."""
    return b"\xff\xd9" in data[-64:]
