"""Measure the size of searchable PDF pages: a text-only A4 page and an A4 page with a red seal.

Run: ``.venv/bin/python bench/ocr/pdf_size.py [--dpi 300] [--lines 38] [--ocr]``. The pages are
synthetic (Liberation Serif 13 pt Vietnamese text, a slightly tinted and noisy paper on the
colour page, a red round seal and a blue signature); words come from the drawing (exact boxes)
or, with ``--ocr``, from a real Tesseract run.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from models import BoundingBox, OcrPage, OcrWord
from pipeline.pdf import PdfMetadata, RasterPage, build_searchable_pdf

FONT = "/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf"
SENTENCES = [
    "Ủy ban nhân dân tỉnh Tuyên Quang quyết định chuyển đổi hồ sơ giấy sang hồ sơ điện tử.",
    "Đơn đề nghị cấp giấy chứng nhận quyền sử dụng đất, quyền sở hữu nhà ở và tài sản khác.",
    "Bộ phận tiếp nhận và trả kết quả kiểm tra thành phần hồ sơ, ghi giấy hẹn trả kết quả.",
    "Căn cứ Nghị định số 61/2018/NĐ-CP ngày 23 tháng 4 năm 2018 của Chính phủ về cơ chế một cửa.",
]


def make_page(folder: Path, *, dpi: int, lines: int, colour: bool) -> tuple[Path, Path | None, OcrPage]:
    """Draw an A4 page; return the 1-bit OCR image, the colour image (or None) and exact words."""
    width, height = round(8.27 * dpi), round(11.69 * dpi)
    font = ImageFont.truetype(FONT, round(13 / 72 * dpi))
    grey = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(grey)
    words: list[OcrWord] = []
    margin, y = round(0.8 * dpi), round(0.8 * dpi)
    step = round(13 / 72 * dpi * 1.45)
    for n in range(lines):
        x = margin
        for text in SENTENCES[n % len(SENTENCES)].split():
            left, top, right, bottom = draw.textbbox((x, y), text, font=font)
            if right > width - margin:
                break
            draw.text((x, y), text, font=font, fill=0)
            words.append(OcrWord(text=text, box=BoundingBox(left, top, right - left, bottom - top),
                                 confidence=95, line=n))
            x = right + round(font.size * 0.25)
        y += step
    colour_path = None
    if colour:
        rng = np.random.default_rng(1)
        paper = np.array([246, 243, 236], np.float32)
        ink = np.asarray(grey, np.float32)[..., None] / 255.0
        rgb = paper * ink + np.array([25, 25, 30], np.float32) * (1 - ink)
        rgb += rng.normal(0, 3, rgb.shape)
        image = Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))
        d = ImageDraw.Draw(image)
        cx, cy, r = width - round(2.2 * dpi), height - round(2.2 * dpi), round(0.8 * dpi)
        d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=(200, 35, 45), width=round(dpi / 40))
        d.ellipse((cx - r + 40, cy - r + 40, cx + r - 40, cy + r - 40), outline=(200, 35, 45), width=4)
        d.text((cx - r + 90, cy - 30), "ỦY BAN NHÂN DÂN", font=ImageFont.truetype(FONT, dpi // 8),
               fill=(200, 35, 45))
        d.line([(cx - r, cy + r // 2), (cx, cy + r // 3), (cx + r // 2, cy + r)], fill=(30, 50, 160), width=6)
        colour_path = folder / "colour.png"
        image.save(colour_path)
        grey = image.convert("L")
    bilevel = grey.point(lambda v: 255 if v > 150 else 0).convert("1")
    ocr_path = folder / ("colour_ocr.png" if colour else "ocr.png")
    bilevel.save(ocr_path)
    return ocr_path, colour_path, OcrPage(width=width, height=height, dpi=dpi, words=words)


def main() -> None:
    """Build one-page PDFs and print their sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--lines", type=int, default=38)
    parser.add_argument("--ocr", action="store_true", help="words from Tesseract instead of the drawing")
    args = parser.parse_args()
    meta = PdfMetadata(title="Bench", case_id="000.00.14.H56-200203-0118", source_sha256="0" * 64,
                       software_version="bench")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for colour in (False, True):
            ocr_path, colour_path, ocr = make_page(folder, dpi=args.dpi, lines=args.lines, colour=colour)
            if args.ocr:
                from pipeline.ocr import recognise

                ocr = recognise(ocr_path, dpi=args.dpi)
            out = folder / "page.pdf"
            start = time.perf_counter()
            build_searchable_pdf([RasterPage(ocr_image=ocr_path, colour_image=colour_path, dpi=args.dpi,
                                             ocr=ocr)], out, metadata=meta)
            seconds = time.perf_counter() - start
            images = _image_sizes(out)
            print(f"{'colour' if colour else 'text-only'} A4 {args.dpi} dpi, {len(ocr.words)} words: "
                  f"file {out.stat().st_size / 1024:.1f} KB, images {images}, built in {seconds:.2f} s")
        tiny = folder / "tiny.png"
        Image.new("1", (8, 8), 1).save(tiny)
        fixed = folder / "fixed.pdf"
        build_searchable_pdf([RasterPage(ocr_image=tiny, colour_image=None, dpi=args.dpi, ocr=None)], fixed,
                             metadata=meta)
        print(f"fixed cost per file (XMP, ICC, structure; font when text): {fixed.stat().st_size / 1024:.1f} KB")


def _image_sizes(pdf: Path) -> str:
    """Encoding and size of each image, as ``pdfimages -list`` reports them."""
    listing = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True,
                             check=True).stdout.splitlines()[2:]
    return ", ".join(f"{cols[8]} {cols[3]}x{cols[4]} {cols[12]} dpi {cols[14]}" for cols in (ln.split() for ln in listing))

if __name__ == "__main__":
    main()
