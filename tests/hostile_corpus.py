"""A corpus of hostile and odd scan files, made on the spot (no committed binaries).

Each entry says which exit code ``sohoa check`` and ``sohoa pdf`` must end with (README's table:
0 ok, 2 usage, 3 input file unusable). Files are small on disk even when they announce gigabytes of
pixels: the point is that sohoa refuses them from their headers, before decoding.
"""
from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image, ImageDraw


@dataclass
class Hostile:
    name: str
    files: list[Path]
    check: int | None  # expected exit code of `sohoa check FILES` (None: not run)
    pdf: int | None  # expected exit code of `sohoa pdf FILES -o out.pdf` (None: not run)
    what: str
    env: dict[str, str] = field(default_factory=dict)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_announcing(width: int, height: int) -> bytes:
    """A valid PNG header for ``width``×``height`` grey pixels with a few bytes of data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + _chunk(b"IEND", b""))


def text_page(text: str = "UY BAN NHAN DAN TINH", size: tuple[int, int] = (1240, 400)) -> Image.Image:
    im = Image.new("L", size, 255)
    ImageDraw.Draw(im).text((40, 150), text, fill=0, font_size=56)
    return im


def _pdf_with_blank_pages(path: Path, pages: int, size_pt: tuple[float, float] = (595, 842)) -> Path:
    pdf = pikepdf.new()
    for _ in range(pages):
        pdf.add_blank_page(page_size=size_pt)
    pdf.save(path)
    return path


def _tiff_frames(path: Path, frames: int, size: tuple[int, int], mode: str = "1") -> Path:
    im = Image.new(mode, size, 1 if mode == "1" else 255)
    im.save(path, save_all=True, append_images=[im] * (frames - 1),
            compression="group4" if mode == "1" else "tiff_lzw", dpi=(300, 300))
    return path


def _tiff_announcing(path: Path, frames: int, size: tuple[int, int]) -> Path:
    """A multi-frame TIFF whose every IFD announces ``size`` (the data is a small blank frame's)."""
    _tiff_frames(path, frames, (64, 64))
    data = bytearray(path.read_bytes())
    assert data[:2] == b"II"
    offset = struct.unpack_from("<I", data, 4)[0]
    while offset:
        count = struct.unpack_from("<H", data, offset)[0]
        for n in range(count):
            at = offset + 2 + 12 * n
            tag, kind = struct.unpack_from("<HH", data, at)
            if tag in (256, 257):  # ImageWidth, ImageLength
                value = size[0] if tag == 256 else size[1]
                if kind == 3:
                    struct.pack_into("<H", data, at + 8, value)
                else:
                    struct.pack_into("<I", data, at + 8, value)
        offset = struct.unpack_from("<I", data, offset + 2 + 12 * count)[0]
    path.write_bytes(bytes(data))
    return path


def _js_attachment_pdf(path: Path) -> Path:
    """A page with real text plus JavaScript, an open action, a Launch link and an .exe attachment."""
    buf = io.BytesIO()
    # A born-digital page: text drawn with a standard font, so the page "already has text".
    pdf = pikepdf.new()
    page = pdf.add_blank_page(page_size=(595, 842))
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    page.obj.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font))
    lines = " ".join(f"BT /F1 14 Tf 60 {780 - 20 * i} Td (Quyet dinh so {i} ve viec tiep nhan ho so) Tj ET"
                     for i in range(12))
    page.obj.Contents = pdf.make_stream(lines.encode())
    js = pdf.make_indirect(pikepdf.Dictionary(S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.alert('x')")))
    page.obj.AA = pikepdf.Dictionary(O=js)
    exe = pdf.make_stream(b"MZ\x90\x00" + b"\x00" * 200)
    exe.Type = pikepdf.Name.EmbeddedFile
    filespec = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Filespec, F=pikepdf.String("setup.exe"),
                                                    EF=pikepdf.Dictionary(F=exe)))
    attach = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.FileAttachment,
                                Rect=[10, 10, 30, 30], FS=filespec)
    launch = pikepdf.Dictionary(Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Link, Rect=[40, 10, 90, 30],
                                A=pikepdf.Dictionary(S=pikepdf.Name.Launch, F=pikepdf.String("cmd.exe")))
    page.obj.Annots = pdf.make_indirect(pikepdf.Array([pdf.make_indirect(attach), pdf.make_indirect(launch)]))
    pdf.Root.OpenAction = js
    pdf.Root.Names = pikepdf.Dictionary(
        JavaScript=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("a"), js])),
        EmbeddedFiles=pikepdf.Dictionary(Names=pikepdf.Array([pikepdf.String("setup.exe"), filespec])))
    pdf.save(buf)
    path.write_bytes(buf.getvalue())
    return path


def grey16_png(path: Path) -> Path:
    """A 16-bit grey scan: white paper (65535) with dark grey text (~8000, i.e. 31 in 8 bits)."""
    page = np.asarray(text_page("GIAY CHUNG NHAN QUYEN SU DUNG DAT"), dtype=np.uint32)
    arr16 = np.where(page < 128, 8000, 65535).astype(np.uint16)
    Image.fromarray(arr16).save(path, dpi=(300, 300))
    return path


def make_corpus(root: Path) -> list[Hostile]:
    """Write every hostile input under ``root``; returns what each command must answer."""
    root.mkdir(parents=True, exist_ok=True)
    c: list[Hostile] = []

    def add(name: str, data: bytes | None, check: int | None, pdf: int | None, what: str, **env: str) -> Path:
        path = root / name
        if data is not None:
            path.write_bytes(data)
        c.append(Hostile(name, [path], check, pdf, what, dict(env)))
        return path

    add("empty.pdf", b"", 3, 3, "zero bytes")
    add("text-named.pdf", "không phải PDF".encode() * 40, 3, 3, "text with a .pdf name")
    add("garbage-after-header.pdf", b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n", 3, 3, "PDF header, junk body")
    add("png-40000x40000.png", png_announcing(40000, 40000), 3, 3, "header announces 1.6 GP")
    add("png-100000x20.png", None, 3, 3, "a 100000×20 strip")
    Image.new("L", (100000, 20), 255).save(root / "png-100000x20.png")
    add("png-10x10.png", None, 3, 3, "a 10×10 image")
    Image.new("L", (10, 10), 255).save(root / "png-10x10.png")
    add("jpeg-truncated.jpg", None, 3, 3, "half a JPEG")
    buf = io.BytesIO()
    text_page().save(buf, format="JPEG", quality=80)
    (root / "jpeg-truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    jpeg_sof = bytearray(buf.getvalue())
    at = jpeg_sof.find(b"\xff\xc0")
    jpeg_sof[at + 5:at + 9] = struct.pack(">HH", 65000, 65000)
    add("jpeg-65000x65000.jpg", bytes(jpeg_sof), 3, 3, "JPEG header announcing 4.2 GP")
    add("gif.gif", b"GIF89a" + b"\x00" * 100, 3, 3, "a GIF")
    add("bmp.bmp", b"BM" + b"\x00" * 100, 3, 3, "a BMP")
    (root / "a-folder.pdf").mkdir(exist_ok=True)
    add("a-folder.pdf", None, 3, 3, "a folder")
    add("missing.pdf", None, 3, 3, "a file that does not exist")
    add("tiff-bad-ifd.tif", b"II*\x00" + struct.pack("<I", 0x7FFFFFF0) + b"\x00" * 64, 3, 3, "TIFF IFD offset past the end")

    _pdf_with_blank_pages(root / "pdf-5000-pages.pdf", 5000)
    c.append(Hostile("pdf-5000-pages.pdf", [root / "pdf-5000-pages.pdf"], 3, 3, "5000 empty pages"))
    _pdf_with_blank_pages(root / "pdf-huge-page.pdf", 1, (14400, 14400))
    c.append(Hostile("pdf-huge-page.pdf", [root / "pdf-huge-page.pdf"], 3, 3, "one 200×200 inch page"))
    with pikepdf.open(_pdf_with_blank_pages(root / "pdf-zero-page.pdf", 1), allow_overwriting_input=True) as p:
        p.pages[0].obj.MediaBox = pikepdf.Array([0, 0, 0, 0])
        p.save(root / "pdf-zero-page.pdf")
    c.append(Hostile("pdf-zero-page.pdf", [root / "pdf-zero-page.pdf"], 3, 3, "a 0×0 page"))
    pikepdf.new().save(root / "pdf-no-pages.pdf")
    c.append(Hostile("pdf-no-pages.pdf", [root / "pdf-no-pages.pdf"], 3, 3, "no pages at all"))
    plain = root / "plain.pdf"
    text_page().save(plain, resolution=150)
    with pikepdf.open(plain) as p:
        p.save(root / "pdf-encrypted.pdf", encryption=pikepdf.Encryption(owner="o", user="u"))
    c.append(Hostile("pdf-encrypted.pdf", [root / "pdf-encrypted.pdf"], 3, 3, "password-protected"))

    _tiff_announcing(root / "tiff-20x10900.tif", 20, (10900, 10900))
    c.append(Hostile("tiff-20x10900.tif", [root / "tiff-20x10900.tif"], 3, 3, "20 frames of 10900² px (2.4 GP)"))
    _tiff_frames(root / "tiff-1100-frames.tif", 1100, (64, 64))
    c.append(Hostile("tiff-1100-frames.tif", [root / "tiff-1100-frames.tif"], 3, 3, "1100 frames"))
    _tiff_announcing(root / "tiff-4x3000.tif", 4, (3000, 3000))
    c.append(Hostile("tiff-4x3000.tif", [root / "tiff-4x3000.tif"], 3, 3, "36 MP with SOHOA_MAX_FILE_PIXELS=30M",
                     {"SOHOA_MAX_FILE_PIXELS": "30000000"}))

    grey16_png(root / "png-16bit-grey.png")
    c.append(Hostile("png-16bit-grey.png", [root / "png-16bit-grey.png"], 0, 0, "16-bit grey"))
    _js_attachment_pdf(root / "pdf-js-attachment.pdf")
    c.append(Hostile("pdf-js-attachment.pdf", [root / "pdf-js-attachment.pdf"], 0, 0,
                     "text page with JavaScript, Launch link and .exe attachment"))
    rgba = Image.new("RGBA", (1240, 400), (255, 255, 255, 0))
    rgba.paste(text_page().convert("RGBA"), (0, 0), mask=text_page().point(lambda v: 255 - v))
    rgba.convert("P").save(root / "png-palette-alpha.png", transparency=0)
    c.append(Hostile("png-palette-alpha.png", [root / "png-palette-alpha.png"], 0, None, "palette + transparency"))
    text_page().convert("CMYK").save(root / "jpeg-cmyk.jpg", dpi=(300, 300))
    c.append(Hostile("jpeg-cmyk.jpg", [root / "jpeg-cmyk.jpg"], 0, None, "CMYK JPEG"))
    # One bad file among good ones: each gets its own verdict, the command the worst exit code.
    c.append(Hostile("mixed", [root / "png-100000x20.png", root / "jpeg-cmyk.jpg"], 3, 3, "bad + good file"))
    return c
