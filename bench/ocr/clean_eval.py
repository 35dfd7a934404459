"""Measure pipeline.clean on synthetic scans: deskew error, rotation accuracy, CER before/after, timing.

Usage:
  python bench/ocr/clean_eval.py [--pages 8] [--profiles clean,office,rough] [--no-ocr] [--out DIR]

Pages come from /work/shared/bench/synth_scans.py (default arguments, seed text
/work/shared/seed/*.txt); the manifest gives the true skew and rotation of each page. OCR is
pipeline.ocr.recognise with at most two Tesseract processes at a time (the machine is shared).
"""
from __future__ import annotations

import os

import argparse
import csv
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo
sys.path.insert(0, str(SHARED / "bench"))
from cer import score  # noqa: E402  (the shared scorer, not a package)

from pipeline import ocr  # noqa: E402
from pipeline.clean import clean_page  # noqa: E402

SYNTH = SHARED / "bench" / "synth_scans.py"
SEED_DIR = SHARED / "seed"


def make_pages(*, profile: str, pages: int, out: Path) -> list[dict[str, str]]:
    """Generate (or reuse) synthetic pages of one profile and return the manifest rows."""
    rows: list[dict[str, str]] = []
    for seed_text in sorted(SEED_DIR.glob("*.txt")):
        target = out / profile / seed_text.stem
        if not (target / "manifest.tsv").exists():
            subprocess.run([sys.executable, str(SYNTH), str(seed_text), str(target), "--pages", str(pages),
                            "--profile", profile], check=True, capture_output=True)
        with open(target / "manifest.tsv", encoding="utf-8") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                row["dir"] = str(target)
                rows.append(row)
    return rows[:pages]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--profiles", default="clean,office,rough")
    ap.add_argument("--no-ocr", action="store_true", help="only geometry and timing")
    ap.add_argument("--out", type=Path, default=Path("/tmp/sohoa_clean_eval"))
    args = ap.parse_args()

    for profile in args.profiles.split(","):
        rows = make_pages(profile=profile, pages=args.pages, out=args.out)
        work = args.out / profile / "work"
        skew_err, rot_ok, t_clean, t_osd = [], 0, [], []
        cleaned = []
        for n, row in enumerate(rows):
            src = Path(row["dir"]) / row["page"]
            t0 = time.perf_counter()
            clean_page(src, dpi=float(row["dpi"]), workdir=work, stem=f"{n:03d}", detect_orientation=False)
            t1 = time.perf_counter()
            page_osd = clean_page(src, dpi=float(row["dpi"]), workdir=work, stem=f"{n:03d}")
            t2 = time.perf_counter()
            t_clean.append(t1 - t0)
            t_osd.append((t2 - t1) - (t1 - t0))
            rot_ok += page_osd.rotation == int(row["rotation"])
            skew_err.append(abs(page_osd.skew_degrees - float(row["skew_deg"])))
            cleaned.append((row, src, page_osd))
        print(f"{profile}: deskew error mean {statistics.mean(skew_err):.3f}° max {max(skew_err):.3f}°, "
              f"rotation {rot_ok}/{len(rows)}, clean {1000 * statistics.mean(t_clean):.0f} ms/page, "
              f"OSD +{1000 * statistics.mean(t_osd):.0f} ms/page", flush=True)
        if args.no_ocr:
            continue

        def cer_pair(item):
            row, src, page = item
            truth = (Path(row["dir"]) / row["truth"]).read_text(encoding="utf-8")
            dpi = float(row["dpi"])
            raw = score(truth, ocr.recognise(src, dpi=dpi).text)
            clean = score(truth, ocr.recognise(page.ocr_image, dpi=dpi).text)
            return raw[:2], clean[:2]

        with ThreadPoolExecutor(max_workers=2) as pool:  # two Tesseracts at a time: the machine is shared
            results = list(pool.map(cer_pair, cleaned))
        n_chars = sum(r[0][1] for r in results)
        raw_cer = sum(r[0][0] for r in results) / n_chars
        clean_cer = sum(r[1][0] for r in results) / n_chars
        print(f"{profile}: CER raw {100 * raw_cer:.2f}% → cleaned {100 * clean_cer:.2f}% "
              f"({len(results)} pages, {n_chars} chars)", flush=True)


if __name__ == "__main__":
    main()
