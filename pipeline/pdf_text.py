"""The invisible text layer: OCR words placed over the page image with Tesseract's glyphless font."""
from __future__ import annotations

import functools
import os
import zlib
from pathlib import Path

import pikepdf
from pikepdf import Array, Dictionary, Name

from models import OcrPage

_GLYPHLESS_CHAR_WIDTH = 500  # the glyphless font's one glyph is half an em wide (1024/2048)


def text_layer(ocr: OcrPage, *, width_pt: float, height_pt: float, width_px: int, height_px: int) -> str:
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
            ops.append(f"/F1 {num(size)} Tf {num(_stretch(word_width, size, units))} Tz "
                       f"1 0 0 1 {num(x)} {num(y)} Tm <{code.hex().upper()}> Tj")
            if i + 1 < len(line):
                # A real space, stretched over the gap, so extractors separate the words.
                gap = max(line[i + 1].box.left * sx - (x + word_width), 0.1)
                ops.append(f"{num(_stretch(gap, size, 1))} Tz <0020> Tj")
    ops.append("ET")
    return "\n".join(ops) + "\n"


def _stretch(width_pt: float, size: float, units: int) -> float:
    """Horizontal scaling (percent) that makes ``units`` glyphless characters span ``width_pt``."""
    return 100.0 * width_pt * 1000.0 / (units * _GLYPHLESS_CHAR_WIDTH * size)


def glyphless_font(pdf: pikepdf.Pdf) -> pikepdf.Object:
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


def num(value: float) -> str:
    """A compact decimal for content streams."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return text if text not in ("", "-0") else "0"
