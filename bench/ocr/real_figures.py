"""A real page's before/after picture: the scan's region above, then what plain Tesseract 5.5 reads
on the raw page and what sohoa reads (the first N lines of each reading).

``python bench/ocr/real_figures.py PAGE_ID [--from 0.1] [--to 0.6] [--lines 16] [--out FILE]``
PAGE_ID is a row of bench/realscans/manifest.tsv; its image is read from ../realscans/pages or
$SOHOA_REALSCANS (rebuild it with bench/realscans/extract.py). The PNG goes to bench/work/figures/
(not committed: the page images are not ours to publish). Look at it.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parents[1]))

import corpus  # noqa: E402
import runs  # noqa: E402
from pipeline.document import process_document  # noqa: E402

WIDTH = 1400
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
BOLD = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def _panel(title: str, lines: list[str]) -> Image.Image:
    font, bold = ImageFont.truetype(FONT, 16), ImageFont.truetype(BOLD, 18)
    panel = Image.new("RGB", (WIDTH, 34 + 21 * len(lines)), "white")
    draw = ImageDraw.Draw(panel)
    draw.text((8, 6), title, font=bold, fill=(150, 0, 0))
    for i, line in enumerate(lines):
        draw.text((8, 32 + 21 * i), line[:150], font=font, fill="black")
    return panel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("page_id")
    ap.add_argument("--from", dest="top", type=float, default=0.0, help="top of the region, share of the height")
    ap.add_argument("--to", dest="bottom", type=float, default=0.3, help="bottom of the region")
    ap.add_argument("--lines", type=int, default=16, help="lines of each reading shown")
    ap.add_argument("--skip", type=int, default=0, help="lines of each reading skipped first")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    sets, why = corpus.real_scan_sets()
    if not sets:
        sys.exit(why)
    page = next((p for p in sets[0].pages if p.stem == args.page_id), None)
    if page is None:
        sys.exit(f"{args.page_id}: not in the real-scan set here ({why or 'no such page'})")
    with tempfile.TemporaryDirectory() as tmp:
        sohoa = process_document([page], workdir=Path(tmp) / "w", out_pdf=Path(tmp) / "o.pdf", jobs=1,
                                 keep_blank=True).page_texts[0]
        plain = runs.inproc_pages([page], Path(tmp) / "floor", jobs=1)[0]
    cut = slice(args.skip, args.skip + args.lines)
    image = Image.open(page).convert("RGB")
    region = image.crop((0, int(args.top * image.height), image.width, int(args.bottom * image.height)))
    region = region.resize((WIDTH, max(1, int(region.height * WIDTH / region.width))))
    parts = [region,
             _panel("Tesseract 5.5, trang gốc (plain, raw page)", [x for x in plain.splitlines() if x.strip()][cut]),
             _panel("sohoa", [x for x in sohoa.splitlines() if x.strip()][cut])]
    out = Image.new("RGB", (WIDTH, sum(p.height for p in parts) + 20), (200, 200, 200))
    y = 0
    for part in parts:
        out.paste(part, (0, y))
        y += part.height + 10
    target = args.out or HERE.parents[1] / "bench" / "work" / "figures" / f"{args.page_id}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    out.save(target)
    print(target)


if __name__ == "__main__":
    main()
