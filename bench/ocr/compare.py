"""sohoa against OCRmyPDF and plain Tesseract: speed, size, accuracy, legibility and memory.

Run: ``python bench/ocr/compare.py [--pages 8] [--jobs 2] [--out bench-results.md]`` (or ``make bench``).

1. Builds the corpus once under ``--workdir`` with ``/work/shared/bench/synth_scans.py``: ``clean``
   (PNG), ``office`` (JPEG), ``rough`` (PNG, some pages rotated), ``seal`` (colour, red seal,
   sans, 200 dpi), ``office-stamp`` (colour JPEG, red seal), ``phone`` and ``phone-stamp`` (phone
   photos on a desk, 72-dpi JPEG header), ``forms`` (synthetic forms by ``bench/forms/make_forms.py``), plus the real pages and line crops of ``/work/shared/realdata`` (read in place) and the
   project's own real-scan set (``bench/realscans/``, images from ``../realscans/pages``): every
   page as ``real-scans``, its table and form pages again as ``real-tables``.
2. Runs on identical input, one after another: ``sohoa pdf``; OCRmyPDF (``-l vie --rotate-pages
   --deskew --clean --output-type pdfa --sidecar``, the pages as one img2pdf PDF); and the floor,
   plain ``tesseract -l vie`` on every page, N processes in parallel, ``OMP_THREAD_LIMIT=1`` (Debian's
   Tesseract 5.3), and the same plain reading by the in-process Tesseract 5.5 (``tesseract-5.5``).
   Each run is a fresh process tree whose peak RSS (sum over the tree, sampled with psutil) is kept.
3. Prints one table per set with ratios against the runs of the same pass, and repeats the whole
   pass (``--repeat 2``): the machine is shared, so only same-pass ratios mean anything.

Legibility = CER of plain ``tesseract -l vie`` on the output PDF re-rendered at 300 dpi by
``pdftoppm``; compare it with the floor's CER (the same OCR on the input images).

The sets and their scoring live in ``corpus.py``, the measured engine runs in ``runs.py``, the
markdown tables and the summary in ``report.py``; this script runs the passes and writes the report.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from corpus import GENERATED_SETS, ROOT, PageSet, generated_set, real_scan_sets, real_sets, score
from report import Row, summary, table
from runs import SOHOA, measured, ocr_env, run_floor, run_ocrmypdf, run_sohoa, tesseract_pages

MEMORY_PAGES = (8, 64)
MEMORY_RUNS = 3  # runs per size; the median is compared


# --------------------------------------------------------------------------------------------
# What the output PDFs keep


def legibility(pdf: Path, ps: PageSet, folder: Path, *, jobs: int) -> float:
    """CER of plain Tesseract on the output PDF rendered at 300 dpi (the images a reader sees)."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "300", "-png", str(pdf), str(folder / "p")], check=True)
    images = sorted(folder.glob("p-*.png"))
    texts = tesseract_pages(images, folder / "ocr", jobs=jobs, psm="7" if ps.lines else None)
    return score(ps.truths, texts, real=ps.name.startswith("real")).cer


def red_share(image: Path, *, scale_to: float | None = None) -> float:
    """Share of clearly red pixels (seal ink) in an image."""
    import cv2
    import numpy as np

    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    b, g, r = (bgr[..., i].astype(np.int16) for i in range(3))
    return float(np.mean((r > 120) & (r - g > 60) & (r - b > 50)))


def red_kept(pdf: Path, ps: PageSet, folder: Path) -> float:
    """Red seal pixels of the output (first page at 100 dpi) as a share of the input's."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["pdftoppm", "-r", "100", "-f", "1", "-l", "1", "-png", str(pdf), str(folder / "red")],
                   check=True)
    [rendered] = sorted(folder.glob("red-*.png"))
    source = cv2.imread(str(ps.pages[0]), cv2.IMREAD_COLOR)
    small = folder / "red-input.png"
    cv2.imwrite(str(small), cv2.resize(source, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA))
    return red_share(rendered) / max(red_share(small), 1e-9)



# --------------------------------------------------------------------------------------------
# One pass over every set


def measure_set(ps: PageSet, out: Path, *, jobs: int, with_ocrmypdf: bool, with_legibility: bool = True) -> list[Row]:
    """Run the three engines one after another on one set and score them."""
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_sohoa(ps, out, jobs=jobs)]
    if with_ocrmypdf:
        runs.append(run_ocrmypdf(ps, out, jobs=jobs))
    runs.append(run_floor(ps, out, jobs=jobs))
    runs.append(run_floor(ps, out, jobs=jobs, inproc=True))
    real = ps.name.startswith("real")
    rows = []
    for run in runs:
        if run.error:
            print(f"  {ps.name}/{run.engine}: {run.error}", file=sys.stderr)
            rows.append(Row(run.engine, *([float("nan")] * 7), extra="not run"))
            continue
        s = score(ps.truths, run.texts, real=real)
        kb = leg = float("nan")
        extra = ""
        if run.output is not None:
            kb = run.output.stat().st_size / 1024 / len(ps.pages)
            if with_legibility:
                leg = legibility(run.output, ps, out / f"legibility-{run.engine}", jobs=jobs)
            if "seal" in ps.name or "stamp" in ps.name:
                extra = f"red kept {red_kept(run.output, ps, out / f'red-{run.engine}'):.2f}"
        pages_out = len([t for t in run.texts if t is not None])
        if pages_out < len(ps.pages):
            extra += f" {len(ps.pages) - pages_out} page(s) lost"
        rows.append(Row(run.engine, run.seconds, 60 * len(ps.pages) / run.seconds, s.cer, s.wer, kb,
                        run.peak_rss_mb, leg, extra.strip(), run.cpu_seconds, s.recall))
    return rows


def memory_check(office: PageSet, workdir: Path, *, jobs: int) -> str:
    """Peak RSS of ``sohoa pdf`` on 8 and on 64 office pages (the set repeated)."""
    rows = ["#### memory: sohoa pdf, office pages", "",
            f"| pages | wall s | peak RSS MB, {MEMORY_RUNS} runs | median |", "|---:|---:|---|---:|"]
    medians = {}
    for n in MEMORY_PAGES:
        pages = (office.pages * (n // len(office.pages) + 1))[:n]
        out = workdir / f"memory-{n}"
        out.mkdir(parents=True, exist_ok=True)
        cmd = [str(SOHOA), "pdf", *map(str, pages), "-o", str(out / "sohoa.pdf"), "--jobs", str(jobs)]
        runs = [measured(cmd, env=ocr_env()) for _ in range(MEMORY_RUNS)]
        peaks = sorted(peak for _, peak, _ in runs)
        medians[n] = peaks[len(peaks) // 2]
        rows.append(f"| {n} | {runs[0][0]:.1f} | {' / '.join(f'{p:.0f}' for p in peaks)} | {medians[n]:.0f} |")
    a, b = MEMORY_PAGES
    rows += ["", f"{b} pages / {a} pages peak RSS (medians): {medians[b] / medians[a]:.2f}. The tree's peak "
             "depends on which page images and Tesseract readings happen to coincide, so one run is not enough."]
    return "\n".join(rows) + "\n"


def _inproc_version() -> str:
    try:
        import tesserocr
    except ImportError:
        return "Tesseract: not installed (pip install tesserocr)"
    return f"tesseract {tesserocr.tesseract_version().split()[1]} (tesserocr)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=8, help="pages per synthetic set")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench-results.md"))
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work")
    ap.add_argument("--repeat", type=int, default=2, help="passes over every set (report each)")
    ap.add_argument("--sets", default=",".join([*GENERATED_SETS, "real-pages", "real-lines", "real-scans", "real-tables"]))
    ap.add_argument("--no-ocrmypdf", action="store_true")
    ap.add_argument("--no-memory", action="store_true", help="skip the 8- vs 64-page memory run")
    ap.add_argument("--no-legibility", action="store_true",
                    help="skip re-reading the output PDFs (two more OCR passes per set)")
    a = ap.parse_args(argv)

    wanted = a.sets.split(",")
    a.workdir.mkdir(parents=True, exist_ok=True)
    with_ocrmypdf = not a.no_ocrmypdf
    if with_ocrmypdf and shutil.which("ocrmypdf", path=str(SOHOA.parent)) is None and not shutil.which("ocrmypdf"):
        print("OCRmyPDF is not installed: `pip install ocrmypdf` (and apt-get install ghostscript unpaper)."
              " Running sohoa and the Tesseract floor only.", file=sys.stderr)
        with_ocrmypdf = False
    reals = {s.name: s for s in real_sets()}
    scans, missing = real_scan_sets()
    reals.update({s.name: s for s in scans})
    if missing:
        print(f"real-scans: pages left out: {missing}", file=sys.stderr)
    sets = [generated_set(n, pages=a.pages, workdir=a.workdir) if n in GENERATED_SETS else reals[n]
            for n in wanted if n in GENERATED_SETS or n in reals]  # in the order asked for
    env = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    env += f" and in-process {_inproc_version()}"
    report = ["# sohoa vs OCRmyPDF vs plain Tesseract", "",
              f"{time.strftime('%Y-%m-%d %H:%M')}, {a.jobs} jobs, {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.1f}, {env}, sohoa lang {os.environ.get('SOHOA_OCR_LANG', 'default')}", ""]
    passes: list[dict[str, list[Row]]] = []
    for n in range(1, a.repeat + 1):
        report.append(f"## Pass {n}\n")
        passes.append({})
        for ps in sets:
            print(f"pass {n}: {ps.name} ({len(ps.pages)} pages)…", file=sys.stderr, flush=True)
            with tempfile.TemporaryDirectory(dir=a.workdir, prefix=f"run-{ps.name}-") as tmp:
                rows = measure_set(ps, Path(tmp), jobs=a.jobs, with_ocrmypdf=with_ocrmypdf,
                                   with_legibility=not a.no_legibility)
            passes[-1][ps.name] = rows
            text = table(ps.name, len(ps.pages), rows)
            print(text, flush=True)
            report.append(text)
            # Written after every set: a long run on a busy machine still leaves what it measured.
            a.out.write_text("\n".join(report[:4] + [summary(passes, {p.name: len(p.pages) for p in sets})]
                                        + report[4:]), encoding="utf-8")
    text = summary(passes, {ps.name: len(ps.pages) for ps in sets})
    print(text, flush=True)
    report.insert(4, text)
    if not a.no_memory:
        office = next((s for s in sets if s.name == "office"), None)
        if office is not None:
            with tempfile.TemporaryDirectory(dir=a.workdir, prefix="run-memory-") as tmp:
                text = memory_check(office, Path(tmp), jobs=a.jobs)
            print(text, flush=True)
            report.append(text)
    a.out.write_text("\n".join(report), encoding="utf-8")
    print(f"written to {a.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
