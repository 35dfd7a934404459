"""Hostile scan files of issue 21 (items 21–27), made on the spot by the tests (no committed binaries).

Each maker writes one small file; several announce or inflate to gigabytes, which is the point:
sohoa must refuse them from their headers or within a bound, never decode them whole.
"""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pikepdf
from PIL import Image, ImageDraw
from pikepdf import Array, Dictionary, Name


def text_image(lines: int = 9, size: tuple[int, int] = (1654, 1170)) -> Image.Image:
    """A grey page with ``lines`` lines of large text (A5 landscape at 200 dpi)."""
    im = Image.new("L", size, 255)
    draw = ImageDraw.Draw(im)
    for i in range(lines):
        draw.text((80, 80 + i * 115), f"DONG SO {i + 1} UY BAN NHAN DAN TINH", fill=0, font_size=64)
    return im


def lzw_tiff_cut(path: Path, fraction: float) -> Path:
    """A 3-frame LZW TIFF of text pages, cut after ``fraction`` of its bytes."""
    page = text_image(size=(800, 1100))
    buf = io.BytesIO()
    page.save(buf, format="TIFF", save_all=True, append_images=[page, page], compression="tiff_lzw", dpi=(200, 200))
    data = buf.getvalue()
    path.write_bytes(data[:int(len(data) * fraction)])
    return path


def _jpeg(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def image_pdf(path: Path, *, jpeg: bytes | None = None, size_px: tuple[int, int] | None = None,
              mediabox: list | None = None, page_keys: dict | None = None, content: bytes | None = None,
              content_filter: bool = False) -> Path:
    """A one-page scan-like PDF: one JPEG image filling the page (each part can be made hostile)."""
    im = text_image()
    data = jpeg if jpeg is not None else _jpeg(im)
    width, height = size_px or im.size
    pdf = pikepdf.new()
    image = pdf.make_stream(data)
    image.Type, image.Subtype = Name.XObject, Name.Image
    image.Width, image.Height = width, height
    image.ColorSpace, image.BitsPerComponent, image.Filter = Name.DeviceGray, 8, Name.DCTDecode
    w_pt, h_pt = im.size[0] * 72 / 200, im.size[1] * 72 / 200
    draw = content if content is not None else f"q {w_pt:.2f} 0 0 {h_pt:.2f} 0 0 cm /Im0 Do Q\n".encode()
    stream = pdf.make_stream(draw)
    if content_filter:  # ``content`` is already Flate-compressed
        stream.Filter = Name.FlateDecode
    page = Dictionary(Type=Name.Page, MediaBox=Array(mediabox if mediabox is not None else [0, 0, w_pt, h_pt]),
                      Resources=Dictionary(XObject=Dictionary(Im0=image)), Contents=stream)
    for key, value in (page_keys or {}).items():
        page[Name("/" + key)] = value
    pdf.pages.append(pikepdf.Page(pdf.make_indirect(page)))
    pdf.save(path)
    return path


def named_mediabox_pdf(path: Path) -> Path:
    """A scan PDF whose /MediaBox holds names, not numbers (pikepdf itself would "fix" it: patched in place)."""
    image_pdf(path, mediabox=[0, 0, 595.5, 842.5])
    data = path.read_bytes()
    good, bad = b"/MediaBox [ 0 0 595.5 842.5 ]", b"/MediaBox [ /a /b /wide /hi ]"
    assert data.count(good) == 1 and len(good) == len(bad)
    path.write_bytes(data.replace(good, bad))
    return path


def truncated_jpeg_pdf(path: Path) -> Path:
    """A scan PDF whose page JPEG is cut at a third: lines 4–9 are lost."""
    data = _jpeg(text_image())
    return image_pdf(path, jpeg=data[:len(data) // 3])


def huge_image_pdf(path: Path) -> Path:
    """An image dictionary claiming 200 000 × 200 000 pixels (with a few bytes of data)."""
    return image_pdf(path, size_px=(200_000, 200_000))


def rectangles_pdf(path: Path, count: int = 3_000_000) -> Path:
    """A page whose content stream is ``count`` tiny filled rectangles (compressed to ~100 KB)."""
    ops = b"0.1 0.1 0.2 0.2 re f\n" * count
    return image_pdf(path, content=zlib.compress(ops, 6), content_filter=True)


def _deflate_of_spaces(total: int) -> bytes:
    """``total`` bytes of spaces, deflated without holding them in memory."""
    comp = zlib.compressobj(9)
    chunk = b" " * (1 << 20)
    parts = [comp.compress(chunk) for _ in range(total // len(chunk))]
    return b"".join(parts) + comp.flush()


def flate_bomb_pdf(path: Path, inflated: int = 1 << 30) -> Path:
    """A born-digital page (it has text, so it would be copied as it is) whose ~1 MB content stream
    inflates to ``inflated`` bytes of spaces before its text."""
    text_pdf(path)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        page = pdf.pages[0]
        ops = page.obj.Contents.read_bytes()
        comp = zlib.compressobj(9)
        chunk = b" " * (1 << 20)
        parts = [comp.compress(chunk) for _ in range(inflated // len(chunk))]
        bomb = pdf.make_stream(b"".join(parts) + comp.compress(ops) + comp.flush())
        bomb.Filter = Name.FlateDecode
        page.obj.Contents = bomb
        pdf.save(path)
    return path


def text_pdf(path: Path, *, mediabox: list | None = None, page_keys: dict | None = None) -> Path:
    """A born-digital page with a dozen lines of text (copied, never OCR'd)."""
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1, BaseFont=Name.Helvetica))
    page.obj.Resources = Dictionary(Font=Dictionary(F1=font))
    page.obj.Contents = pdf.make_stream(" ".join(
        f"BT /F1 14 Tf 60 {780 - 20 * i} Td (Quyet dinh so {i} ve viec tiep nhan ho so) Tj ET"
        for i in range(12)).encode())
    if mediabox is not None:
        page.obj.MediaBox = Array(mediabox)
    for key, value in (page_keys or {}).items():
        page.obj[Name("/" + key)] = value
    pdf.save(path)
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def ztxt_bomb_png(path: Path, inflated: int = 200 << 20) -> Path:
    """A small good PNG whose zTXt chunk inflates to ``inflated`` bytes."""
    buf = io.BytesIO()
    text_image(size=(800, 600)).save(buf, format="PNG", dpi=(200, 200))
    data = buf.getvalue()
    ztxt = _chunk(b"zTXt", b"Comment\x00\x00" + _deflate_of_spaces(inflated))
    at = data.index(b"IDAT") - 4
    path.write_bytes(data[:at] + ztxt + data[at:])
    return path


def jpeg_file(path: Path, *, padding: int = 0) -> Path:
    """A good JPEG scan, followed by ``padding`` zero bytes (a scanner that pre-allocates)."""
    with open(path, "wb") as f:
        f.write(_jpeg(text_image()))
        f.truncate(f.tell() + padding)  # sparse: gigabytes announced cost nothing on disk
    return path


def truncated_pdf(path: Path) -> Path:
    """A scan PDF cut at 60 %: no xref, no trailer, poppler complains on every line."""
    image_pdf(path)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * 0.6)])
    return path
