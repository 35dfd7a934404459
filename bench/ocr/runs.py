"""Each engine run as a measured process tree: ``sohoa pdf``, OCRmyPDF and the plain-Tesseract floor.

``python bench/ocr/runs.py --jobs N --out DIR [--psm 7] IMAGE...`` is the floor's own process (see ``run_floor``).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from corpus import LINE_CROP_ENV, PageSet

SOHOA = Path(sys.executable).with_name("sohoa")


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


def run_floor(ps: PageSet, out: Path, *, jobs: int, inproc: bool = False) -> Run:
    """Plain ``tesseract -l vie`` per page, ``jobs`` processes at a time (see ``_floor_main``); with
    ``inproc`` the same plain reading by the in-process Tesseract 5.5 (tesserocr) instead of
    Debian's command line: "the best Tesseract this machine can run" (issue 19)."""
    run = Run("tesseract-5.5" if inproc else "tesseract")
    folder = out / ("floor-inproc" if inproc else "floor")
    cmd = [sys.executable, __file__, "--jobs", str(jobs), "--out", str(folder),
           *(["--psm", "7"] if ps.lines else []), *(["--inproc"] if inproc else []), *map(str, ps.pages)]
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


def inproc_pages(images: list[Path], folder: Path, *, jobs: int, single_line: bool = False) -> list[str]:
    """Plain in-process Tesseract 5.5 on each image (no cleaning, no filtering of its words), ``jobs``
    threads at a time (recognition releases the GIL); the text of each, a line per Tesseract line."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from pipeline import ocr_engine

    folder.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[int, Path]) -> str:
        i, image = item
        text = data_text(ocr_engine.read_words(image, dpi=None, lang="vie", single_line=single_line))
        (folder / f"{i:04d}.txt").write_text(text, encoding="utf-8")
        return text

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, enumerate(images)))


def data_text(data: dict) -> str:
    """The text of Tesseract's word table (image_to_data's columns), a line per text line."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    for i, t in enumerate(data["text"]):
        lines.setdefault((data["block_num"][i], data["par_num"][i], data["line_num"][i]), []).append(t)
    return "\n".join(" ".join(w) for w in lines.values())


def _floor_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--psm")
    ap.add_argument("--inproc", action="store_true", help="the in-process Tesseract 5.5, not the command line")
    ap.add_argument("images", nargs="+", type=Path)
    a = ap.parse_args(argv)
    if a.inproc:
        inproc_pages(a.images, a.out, jobs=a.jobs, single_line=a.psm == "7")
    else:
        tesseract_pages(a.images, a.out, jobs=a.jobs, psm=a.psm)


if __name__ == "__main__":
    _floor_main(sys.argv[1:])
