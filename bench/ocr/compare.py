"""sohoa against OCRmyPDF and plain Tesseract: speed, size, accuracy, legibility and memory.

Run: ``python bench/ocr/compare.py [--pages 8] [--jobs 2] [--out bench-results.md]`` (or ``make bench``).

1. Builds the corpus once under ``--workdir`` with ``/work/shared/bench/synth_scans.py``: ``clean``
   (PNG), ``office`` (JPEG), ``rough`` (PNG, some pages rotated), ``seal`` (colour, red seal,
   sans, 200 dpi), ``office-stamp`` (colour JPEG, red seal), ``phone`` and ``phone-stamp`` (phone
   photos on a desk, 72-dpi JPEG header), plus the real pages and line crops of ``/work/shared/realdata`` (read in place).
2. Runs on identical input, one after another: ``sohoa pdf``; OCRmyPDF (``-l vie --rotate-pages
   --deskew --clean --output-type pdfa --sidecar``, the pages as one img2pdf PDF); and the floor,
   plain ``tesseract -l vie`` on every page, N processes in parallel, ``OMP_THREAD_LIMIT=1``.
   Each run is a fresh process tree whose peak RSS (sum over the tree, sampled with psutil) is kept.
3. Prints one table per set with ratios against the runs of the same pass, and repeats the whole
   pass (``--repeat 2``): the machine is shared, so only same-pass ratios mean anything.

Legibility = CER of plain ``tesseract -l vie`` on the output PDF re-rendered at 300 dpi by
``pdftoppm``; compare it with the floor's CER (the same OCR on the input images).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo
SYNTH = SHARED / "bench" / "synth_scans.py"
REALDATA = SHARED / "realdata"
ROOT = Path(__file__).resolve().parents[2]
SOHOA = Path(sys.executable).with_name("sohoa")

# name, synth_scans.py arguments; the seal set is what a counter scanner in colour mode gives.
SYNTH_SETS = {
    "clean": ["--profile", "clean", "--format", "png"],
    "office": ["--profile", "office", "--format", "jpg"],
    "rough": ["--profile", "rough", "--format", "png"],
    "seal": ["--profile", "office", "--format", "png", "--stamp", "--font", "sans", "--dpi", "200"],
    # issue 14: a red seal on an office scan; phone photos (perspective, shadow, soft focus, 72-dpi header)
    "office-stamp": ["--profile", "office", "--stamp", "--format", "jpg"],
    "phone": ["--profile", "phone", "--format", "jpg"],
    "phone-stamp": ["--profile", "phone", "--stamp", "--format", "jpg"],
}
# The issue's targets: sohoa's CER at most this (%), and below plain Tesseract's on every set;
# below OCRmyPDF's on the scanner sets; wall time at most 1.3x the floor's and 0.2x OCRmyPDF's.
TARGET_CER = {"clean": 0.4, "office": 0.7, "rough": 2.0, "office-stamp": 1.5, "phone": 3.0,
              "phone-stamp": 4.0, "real-pages": 6.0, "real-lines": 1.0}
BELOW_OCRMYPDF = {"clean", "office", "rough"}
MAX_FLOOR_RATIO = 1.3
MAX_OCRMYPDF_RATIO = 0.2
MEMORY_PAGES = (8, 64)
MEMORY_RUNS = 3  # runs per size; the median is compared
# The real line crops (dl_06.png is 638x19) are longer than the reader lets a page be (25x its
# width); for those sets sohoa runs with the shape limit lifted (see README, Input limits).
LINE_CROP_ENV = {"SOHOA_MAX_ASPECT": "1000"}


def _load_cer():
    spec = importlib.util.spec_from_file_location("shared_cer", SHARED / "bench" / "cer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cer = _load_cer()


# --------------------------------------------------------------------------------------------
# Corpus


@dataclass
class PageSet:
    """Page images with their ground truth, one truth string per page."""

    name: str
    pages: list[Path]
    truths: list[str]
    lines: bool = False  # line crops: Tesseract reads each as one line (--psm 7)


def synth_set(name: str, args: list[str], *, pages: int, workdir: Path) -> PageSet:
    """Generate (or reuse) one synthetic set."""
    out = workdir / "corpus" / f"{name}-{pages}"
    if not (out / "manifest.tsv").exists():
        seed = sorted((SHARED / "seed").glob("*.txt"))[0]
        subprocess.run([sys.executable, str(SYNTH), str(seed), str(out), "--pages", str(pages), *args],
                       check=True, capture_output=True)
    rows = [r.split("\t") for r in (out / "manifest.tsv").read_text().splitlines()[1:]]
    return PageSet(name, [out / r[0] for r in rows], [(out / r[1]).read_text("utf-8") for r in rows])


def real_sets() -> list[PageSet]:
    """The two real letter pages and the real line crops, from the checked manifest."""
    pages, lines = PageSet("real-pages", [], []), PageSet("real-lines", [], [], lines=True)
    for row in (REALDATA / "manifest.tsv").read_text("utf-8").splitlines()[1:]:
        path, truth = row.split("\t", 1)
        target = pages if path.startswith("pages/") else lines
        target.pages.append(REALDATA / path)
        target.truths.append(truth.replace("\\n", "\n"))
    return [s for s in (pages, lines) if s.pages]


def norm_real(text: str) -> str:
    """The realdata convention: '…' is scored as '...'."""
    return text.replace("…", "...")


# --------------------------------------------------------------------------------------------
# Running a measured process tree


@dataclass
class Run:
    """One engine on one set: wall time, peak RSS of the process tree, texts per page, output."""

    engine: str
    seconds: float = float("nan")
    peak_rss_mb: float = float("nan")
    cpu_seconds: float = float("nan")  # user + system of the whole process tree
    texts: list[str] = field(default_factory=list)
    output: Path | None = None
    error: str = ""


def measured(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None) -> tuple[float, float, float]:
    """Run ``cmd``; return (wall seconds, peak RSS of the whole process tree in MB, the tree's CPU
    seconds: user + system of ``cmd`` and every child it waited for, which unlike the wall time
    hardly move when the machine is busy)."""
    import resource

    import psutil

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = psutil.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            try:
                tree = [proc, *proc.children(recursive=True)]
                total = 0
                for p in tree:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                pass
            stop.wait(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = proc.communicate()
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {err.decode(errors='replace')[-800:]}")
    return seconds, peak / 2**20, cpu


def ocr_env() -> dict:
    """Single-threaded Tesseract, as every engine here should run it on a shared machine."""
    return {**os.environ, "OMP_THREAD_LIMIT": "1"}


def run_sohoa(ps: PageSet, out: Path, *, jobs: int) -> Run:
    """``sohoa pdf`` on the set's pages, in page order."""
    run = Run("sohoa", output=out / "sohoa.pdf")
    sidecar = out / "sohoa.txt"
    cmd = [str(SOHOA), "pdf", *map(str, ps.pages), "-o", str(run.output), "--sidecar", str(sidecar),
           "--jobs", str(jobs), "--keep-blank"]
    env = {**ocr_env(), **(LINE_CROP_ENV if ps.lines else {})}
    run.seconds, run.peak_rss_mb, run.cpu_seconds = measured(cmd, env=env)
    run.texts = sidecar.read_text("utf-8").split("\f")
    return run


def run_ocrmypdf(ps: PageSet, out: Path, *, jobs: int) -> Run:
    """OCRmyPDF with its cleaning options on one PDF of the page images (img2pdf, lossless)."""
    run = Run("ocrmypdf", output=out / "ocrmypdf.pdf")
    if shutil.which("ocrmypdf", path=str(SOHOA.parent)) is None and shutil.which("ocrmypdf") is None:
        run.error = "OCRmyPDF is not installed (pip install ocrmypdf; apt-get install ghostscript unpaper)"
        return run
    source = out / "ocrmypdf-input.pdf"
    if not source.exists():
        import img2pdf

        source.write_bytes(img2pdf.convert([str(p) for p in _without_alpha(ps.pages, out / "rgb")],
                                           rotation=img2pdf.Rotation.ifvalid))
    exe = shutil.which("ocrmypdf", path=str(SOHOA.parent)) or "ocrmypdf"
    sidecar = out / "ocrmypdf.txt"
    cmd = [exe, "-l", "vie", "--rotate-pages", "--deskew", "--clean", "--jobs", str(jobs),
           "--output-type", "pdfa", "--sidecar", str(sidecar), str(source), str(run.output)]
    try:
        run.seconds, run.peak_rss_mb, run.cpu_seconds = measured(cmd, env=ocr_env())
    except RuntimeError as exc:
        run.error = str(exc).splitlines()[-1][:200]
        return run
    run.texts = sidecar.read_text("utf-8").split("\f")
    return run


def _without_alpha(pages: list[Path], folder: Path) -> list[Path]:
    """img2pdf refuses images with an alpha channel (the real line crops): flatten those onto white."""
    from PIL import Image

    result = []
    for page in pages:
        with Image.open(page) as im:
            if "A" not in im.getbands():
                result.append(page)
                continue
            folder.mkdir(parents=True, exist_ok=True)
            flat = Image.new("RGB", im.size, "white")
            flat.paste(im, mask=im.getchannel("A"))
            target = folder / page.name
            flat.save(target)
            result.append(target)
    return result


def run_floor(ps: PageSet, out: Path, *, jobs: int) -> Run:
    """Plain ``tesseract -l vie`` per page, ``jobs`` processes at a time (see ``_floor_main``)."""
    run = Run("tesseract")
    folder = out / "floor"
    cmd = [sys.executable, __file__, "_floor", "--jobs", str(jobs), "--out", str(folder),
           *(["--psm", "7"] if ps.lines else []), *map(str, ps.pages)]
    run.seconds, run.peak_rss_mb, run.cpu_seconds = measured(cmd, env=ocr_env())
    run.texts = [(folder / f"{i:04d}.txt").read_text("utf-8") for i in range(len(ps.pages))]
    return run


def tesseract_pages(images: list[Path], folder: Path, *, jobs: int, psm: str | None = None) -> list[str]:
    """Plain Tesseract on each image, ``jobs`` at a time; the text of each, in order."""
    folder.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[int, Path]) -> str:
        i, image = item
        base = folder / f"{i:04d}"
        cmd = ["tesseract", str(image), str(base), "-l", "vie", *(["--psm", psm] if psm else [])]
        subprocess.run(cmd, check=True, capture_output=True, env=ocr_env())
        return base.with_suffix(".txt").read_text("utf-8")

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, enumerate(images)))


def _floor_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--psm")
    ap.add_argument("images", nargs="+", type=Path)
    a = ap.parse_args(argv)
    tesseract_pages(a.images, a.out, jobs=a.jobs, psm=a.psm)


# --------------------------------------------------------------------------------------------
# Scoring


@dataclass
class Score:
    cer: float
    wer: float


def score(truths: list[str], texts: list[str], *, real: bool) -> Score:
    """Micro-averaged CER and WER; missing pages count as empty (every truth character an error)."""
    ce = cn = we = wn = 0
    for i, truth in enumerate(truths):
        hyp = texts[i] if i < len(texts) else ""
        if real:
            truth, hyp = norm_real(truth), norm_real(hyp)
        e, n, w_e, w_n = cer.score(truth, hyp)
        ce, cn, we, wn = ce + e, cn + n, we + w_e, wn + w_n
    return Score(ce / max(cn, 1), we / max(wn, 1))


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


@dataclass
class Row:
    engine: str
    seconds: float
    ppm: float
    cer: float
    wer: float
    kb_per_page: float
    rss_mb: float
    legibility: float
    extra: str = ""
    cpu_seconds: float = float("nan")


def measure_set(ps: PageSet, out: Path, *, jobs: int, with_ocrmypdf: bool, with_legibility: bool = True) -> list[Row]:
    """Run the three engines one after another on one set and score them."""
    out.mkdir(parents=True, exist_ok=True)
    runs = [run_sohoa(ps, out, jobs=jobs)]
    if with_ocrmypdf:
        runs.append(run_ocrmypdf(ps, out, jobs=jobs))
    runs.append(run_floor(ps, out, jobs=jobs))
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
                        run.peak_rss_mb, leg, extra.strip(), run.cpu_seconds))
    return rows


def fmt(value: float, spec: str) -> str:
    return "–" if value != value else format(value, spec)


def table(name: str, n_pages: int, rows: list[Row]) -> str:
    """A markdown table of one set, with the sohoa/OCRmyPDF and sohoa/floor ratios."""
    by = {r.engine: r for r in rows}
    lines = [f"#### {name} ({n_pages} pages)", "",
             "| engine | wall s | CPU s | pages/min | CER % | WER % | KB/page | peak RSS MB | legibility CER % | notes |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.engine} | {fmt(r.seconds, '.1f')} | {fmt(r.cpu_seconds, '.1f')} | {fmt(r.ppm, '.1f')} | "
                     f"{fmt(100 * r.cer, '.2f')} | "
                     f"{fmt(100 * r.wer, '.2f')} | {fmt(r.kb_per_page, '.1f')} | {fmt(r.rss_mb, '.0f')} | "
                     f"{fmt(100 * r.legibility, '.2f')} | {r.extra} |")
    s = by.get("sohoa")
    for other, label in (("ocrmypdf", "sohoa/OCRmyPDF"), ("tesseract", "sohoa/floor")):
        o = by.get(other)
        if s is None or o is None or o.seconds != o.seconds:
            continue
        lines.append(f"| {label} | {fmt(s.seconds / o.seconds, '.2f')} | {fmt(s.cpu_seconds / o.cpu_seconds, '.2f')} | | "
                     f"{fmt(s.cer / o.cer if o.cer else float('nan'), '.2f')} | "
                     f"{fmt(s.wer / o.wer if o.wer else float('nan'), '.2f')} | "
                     f"{fmt(s.kb_per_page / o.kb_per_page, '.2f') if o.kb_per_page == o.kb_per_page else ''} | "
                     f"{fmt(s.rss_mb / o.rss_mb, '.2f')} | | |")
    floor = by.get("tesseract")
    if floor is not None and s is not None and s.legibility == s.legibility:
        lines.append("")
        lines.append(f"Legibility: sohoa output {100 * s.legibility:.2f}% vs input {100 * floor.cer:.2f}% "
                     f"(Δ {100 * (s.legibility - floor.cer):+.2f} points; negative = output reads better).")
    return "\n".join(lines) + "\n"


def summary(passes: list[dict[str, list[Row]]], pages: dict[str, int]) -> str:
    """One line per set against the issue's targets: CERs (identical in every pass: the same pages,
    deterministic engines) and the wall-time ratios of each pass."""
    lines = ["## Summary against the targets", "",
             "| set | pages | sohoa CER % | target % | OCRmyPDF CER % | floor CER % | sohoa/floor wall | "
             "sohoa/floor CPU | sohoa/OCRmyPDF wall | met |",
             "|---|---:|---:|---:|---:|---:|---|---|---|---|"]
    for name in passes[0]:
        runs = [{r.engine: r for r in p[name]} for p in passes if name in p]
        first = runs[0]
        s, o, f = first.get("sohoa"), first.get("ocrmypdf"), first.get("tesseract")
        floor_ratios = [r["sohoa"].seconds / r["tesseract"].seconds for r in runs]
        cpu_ratios = [r["sohoa"].cpu_seconds / r["tesseract"].cpu_seconds for r in runs]
        ocrm_ratios = [r["sohoa"].seconds / r["ocrmypdf"].seconds for r in runs
                       if "ocrmypdf" in r and r["ocrmypdf"].seconds == r["ocrmypdf"].seconds]
        target = TARGET_CER.get(name)
        checks = [100 * s.cer <= target] if target is not None else []
        checks.append(s.cer < f.cer)
        if name in BELOW_OCRMYPDF and o is not None and o.cer == o.cer:
            checks.append(s.cer < o.cer)
        checks.append(max(floor_ratios) <= MAX_FLOOR_RATIO)
        if ocrm_ratios:
            checks.append(max(ocrm_ratios) <= MAX_OCRMYPDF_RATIO)
        lines.append(
            f"| {name} | {pages[name]} | {100 * s.cer:.2f} | {'–' if target is None else f'≤ {target}'} | "
            f"{fmt(100 * o.cer, '.2f') if o else '–'} | {100 * f.cer:.2f} | "
            f"{' / '.join(f'{x:.2f}' for x in floor_ratios)} | {' / '.join(f'{x:.2f}' for x in cpu_ratios)} | "
            f"{' / '.join(f'{x:.2f}' for x in ocrm_ratios) or '–'} | "
            f"{'yes' if all(checks) else 'no'} |")
    lines += ["", f"met = CER within target, below the floor (and below OCRmyPDF on {', '.join(sorted(BELOW_OCRMYPDF))}), "
              f"wall ≤ {MAX_FLOOR_RATIO}× floor and ≤ {MAX_OCRMYPDF_RATIO}× OCRmyPDF in every pass. The CPU ratio (user + "
              "system seconds of each process tree) is what the wall ratio would be on an idle machine whose cores "
              "both engines keep busy; it moves little with load, the wall ratio a lot."]
    return "\n".join(lines) + "\n"


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_floor"]:
        _floor_main(argv[1:])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=8, help="pages per synthetic set")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("bench-results.md"))
    ap.add_argument("--workdir", type=Path, default=ROOT / "bench" / "work")
    ap.add_argument("--repeat", type=int, default=2, help="passes over every set (report each)")
    ap.add_argument("--sets", default=",".join([*SYNTH_SETS, "real-pages", "real-lines"]))
    ap.add_argument("--no-ocrmypdf", action="store_true")
    ap.add_argument("--no-memory", action="store_true", help="skip the 8- vs 64-page memory run")
    ap.add_argument("--no-legibility", action="store_true",
                    help="skip re-reading the output PDFs (two more OCR passes per set)")
    a = ap.parse_args(argv)

    wanted = a.sets.split(",")
    with_ocrmypdf = not a.no_ocrmypdf
    if with_ocrmypdf and shutil.which("ocrmypdf", path=str(SOHOA.parent)) is None and not shutil.which("ocrmypdf"):
        print("OCRmyPDF is not installed: `pip install ocrmypdf` (and apt-get install ghostscript unpaper)."
              " Running sohoa and the Tesseract floor only.", file=sys.stderr)
        with_ocrmypdf = False
    reals = {s.name: s for s in real_sets()}
    sets = [synth_set(n, SYNTH_SETS[n], pages=a.pages, workdir=a.workdir) if n in SYNTH_SETS else reals[n]
            for n in wanted if n in SYNTH_SETS or n in reals]  # in the order asked for
    env = subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
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
