"""How much of the floor's time Tesseract alone costs on what sohoa hands it (issue 14's speed budget).

``python bench/ocr/tesseract_share.py [SET[:N] ...]`` (SET as in bench/ocr/quick_cer.py, default every set
with 4 pages; needs ``SOHOA_SHARED``) cleans each page as ``sohoa pdf`` does, then runs, one page
at a time and one after the other in this process:

- the floor: plain ``tesseract -l vie`` on the raw page, exactly as ``bench/ocr/compare.py`` runs it;
- sohoa's reading: the same ``tesseract`` binary on the image sohoa's ``read_cleaned`` gives it
  (the 225-dpi reading copy, the enlarged low-resolution page, the line crop as ``--psm 7``).

It prints the CPU seconds (user + system of the child) of both and their ratio per set: a lower
bound of sohoa/floor that no work outside Tesseract can lower, since sohoa cannot read a page
without reading it. With OCRmyPDF's wall/floor ratio from a ``make bench`` results file
(``--results``), it also prints the lowest sohoa/OCRmyPDF ratio that bound allows.
"""
from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import quick_cer
import runs

DEFAULT_SETS = ["clean", "office", "rough", "seal", "office-stamp", "phone", "phone-stamp",
                "real-pages", "real-lines"]


def child_cpu(cmd: list[str]) -> float:
    """CPU seconds (user + system) of one child process run to its end."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, capture_output=True, env=runs.ocr_env())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def sohoa_reading_cmd(cleaned, out: Path) -> list[str]:
    """The tesseract command line ``pipeline.ocr.recognise`` runs for ``read_cleaned(cleaned)``."""
    dpi = cleaned.read_dpi or cleaned.dpi
    extra = ["--psm", "7"] if cleaned.single_line and not cleaned.read_dpi else []
    return ["tesseract", str(cleaned.tesseract_image), str(out), "-l", "vie", "--dpi", str(round(dpi)), *extra,
            "tsv"]


def ocrmypdf_over_floor(results: Path) -> dict[str, float]:
    """OCRmyPDF wall / floor wall per set, from the first pass of a compare.py results file."""
    ratios: dict[str, float] = {}
    name = None
    walls: dict[str, float] = {}
    for line in results.read_text("utf-8").splitlines():
        if m := re.match(r"#### (\S+) \(", line):
            name, walls = m.group(1), {}
        elif name and (m := re.match(r"\| (ocrmypdf|tesseract) \| ([\d.]+) \|", line)):
            walls[m.group(1)] = float(m.group(2))
            if len(walls) == 2 and name not in ratios:
                ratios[name] = walls["ocrmypdf"] / walls["tesseract"]
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", default=[f"{s}:4" for s in DEFAULT_SETS])
    ap.add_argument("--results", type=Path, help="a compare.py results file, for OCRmyPDF's time")
    a = ap.parse_args()
    ocrmypdf = ocrmypdf_over_floor(a.results) if a.results else {}
    print(f"load {os.getloadavg()[0]:.1f}")
    print("| set | pages | floor Tesseract CPU s/page | sohoa's Tesseract CPU s/page | ratio (lower bound of "
          "sohoa/floor) | OCRmyPDF/floor wall | lowest sohoa/OCRmyPDF |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for arg in a.sets:
        name, _, n = arg.partition(":")
        ps = quick_cer.load(name, int(n or 4))
        floor_cpu = sohoa_cpu = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            for i, page in enumerate(ps.pages):
                floor_cmd = ["tesseract", str(page), str(work / f"f{i}"), "-l", "vie",
                             *(["--psm", "7"] if ps.lines else [])]
                floor_cpu += child_cpu(floor_cmd)
                cleaned = _clean(page, work / f"c{i}")
                sohoa_cpu += child_cpu(sohoa_reading_cmd(cleaned, work / f"s{i}"))
        k = len(ps.pages)
        ratio = sohoa_cpu / floor_cpu
        over = ocrmypdf.get(name)
        lowest = f"{ratio / over:.2f}" if over else "–"
        print(f"| {name} | {k} | {floor_cpu / k:.3f} | {sohoa_cpu / k:.3f} | {ratio:.2f} | "
              f"{f'{over:.2f}' if over else '–'} | {lowest} |", flush=True)


def _clean(page: Path, workdir: Path):
    """The page cleaned as ``sohoa pdf`` cleans it (read and, for a photo, rectified first)."""
    import cv2

    from pipeline import camera, clean, document
    from pipeline.reader import read_pages

    raw = next(iter(read_pages(page, workdir / "src")))
    image = cv2.imread(str(raw.path), cv2.IMREAD_UNCHANGED)
    grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    photo = camera.find_page(grey)
    if photo is not None:
        raw, grey = document._rectify_photo(raw, photo, image)
    return clean.clean_page(raw.path, dpi=raw.dpi, workdir=workdir, stem="p", detect_orientation=True,
                            osd_only_if_sideways=True)


if __name__ == "__main__":
    main()
