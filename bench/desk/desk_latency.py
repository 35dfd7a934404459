#!/usr/bin/env python3
"""How fast the scanning desk tells the operator about each page (preflight, before any OCR).

1. Makes ``--pages`` synthetic 300-dpi counter scans with /work/shared/bench/synth_scans.py
   (office profile, JPEG), and a multi-page PDF stack of them with a cover sheet on top.
2. Per page: the time to read the page alone (``read_pages``: decode + write the working copy,
   the baseline) and ``check_pages`` on that page (read + preflight + QR look), one job.
3. The hot folder for real: a temporary Prefect server, the intake flow, ``HotFolder`` in a
   thread. Each file is moved into INBOX atomically (the scanner's last byte is the landing),
   and the time until its ``<name>.check.txt`` appears is measured, then until it is in done/
   (OCR included). The landing → verdict time includes the watcher's settle time and poll, given.

Usage:  .venv/bin/python bench/desk/desk_latency.py [--pages 4] [--settle 0.5] [--poll 0.2] [--jobs 2]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

SYNTH = SHARED / "bench" / "synth_scans.py"
SEED_DIR = SHARED / "seed"
CASE = "000.00.01.H56-181010-0001"


def make_pages(out: Path, n: int) -> list[Path]:
    text = sorted(SEED_DIR.glob("*.txt"))[0]
    subprocess.run([sys.executable, str(SYNTH), str(text), str(out), "--pages", str(n), "--dpi", "300",
                    "--profile", "office", "--format", "jpg"], check=True)
    return sorted((out / "pages").glob("*.jpg"))


def make_stack(pages: list[Path], out: Path) -> Path:
    from PIL import Image

    from models import CaseId
    from pipeline.qr import render_coversheet

    images = [render_coversheet(CaseId.parse(CASE), dpi=300)] + [Image.open(p).convert("L") for p in pages]
    images[0].save(out, format="PDF", save_all=True, append_images=images[1:], resolution=300.0, quality=80)
    return out


def time_pages(pages: list[Path], work: Path) -> tuple[list[float], list[float]]:
    from pipeline.document import check_pages
    from pipeline.reader import read_pages

    reads, checks = [], []
    for n, page in enumerate(pages):
        started = time.perf_counter()
        list(read_pages(page, work / f"read{n}"))
        reads.append(time.perf_counter() - started)
        started = time.perf_counter()
        check_pages([page], workdir=work / f"check{n}", jobs=1, detect_qr=True)
        checks.append(time.perf_counter() - started)
    return reads, checks


def time_watcher(files: list[Path], root: Path, *, settle: float, poll: float,
                 jobs: int) -> list[tuple[str, float, float, float]]:
    """Per file: landing → first page verdict, → complete .check.txt, → in done/ (OCR and storage included)."""
    from prefect.testing.utilities import prefect_test_harness

    from flows.desk import CHECK_DONE, intake
    from flows.watch import HotFolder

    os.environ["SOHOA_DATA_DIR"] = str(root / "data")
    inbox, done = root / "inbox", root / "done"
    folder = HotFolder(inbox=inbox, done=done, failed=root / "failed", needs_case=root / "needs",
                       ingest=lambda p, c: intake(files=[str(p)], case_id=c, jobs=jobs, write_check=True),
                       default_case=CASE, workers=1, settle=settle, poll=poll)
    results = []
    with prefect_test_harness(server_startup_timeout=120):
        stop = threading.Event()
        service = threading.Thread(target=folder.run, args=(stop,), daemon=True)
        service.start()
        for n, src in enumerate(files):
            staged = root / f"staged-{n}{src.suffix}"
            shutil.copy(src, staged)
            name = f"{n:02d}-{src.name}"
            landed = time.perf_counter()
            os.replace(staged, inbox / name)  # the scanner's last byte
            first = complete = None
            while not (done / name).exists():
                check = inbox / f"{name}.check.txt"
                try:
                    text = check.read_text("utf-8")
                except FileNotFoundError:
                    text = ""
                now = time.perf_counter()
                if first is None and "trang 1:" in text:
                    first = now
                if complete is None and CHECK_DONE in text:
                    complete = now
                time.sleep(0.02)
            finished = time.perf_counter()
            results.append((name, (first or finished) - landed, (complete or finished) - landed, finished - landed))
        stop.set()
        service.join()
    return results


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=4)
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--poll", type=float, default=0.2)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

    with tempfile.TemporaryDirectory(prefix="desk-latency-") as tmp:
        root = Path(tmp)
        pages = make_pages(root / "synth", args.pages)
        stack = make_stack(pages, root / "xap.pdf")
        reads, checks = time_pages(pages, root / "work")
        print(f"{len(pages)} synthetic 300-dpi pages (office profile, JPEG), one job")
        print(f"  read only (baseline):           median {statistics.median(reads) * 1000:6.0f} ms/page")
        print(f"  check_pages (read+preflight+QR): median {statistics.median(checks) * 1000:6.0f} ms/page "
              f"(max {max(checks) * 1000:.0f}); ratio to read {statistics.median(checks) / statistics.median(reads):.1f}x")
        base = statistics.median(reads)
        # The first file is a warm-up: a process's first flow run pays imports and client start-up.
        rows = time_watcher([pages[0], pages[1], stack], root / "watch", settle=args.settle, poll=args.poll,
                            jobs=args.jobs)
        print(f"hot folder (settle {args.settle} s, poll {args.poll} s, intake flow on a local Prefect server; "
              f"{stack.name} = cover sheet + {len(pages)} pages):")
        for name, to_first, to_check, to_done in rows:
            print(f"  {name:>12}: landing → first verdict {to_first:5.2f} s ({to_first / base:.0f}x single-page read), "
                  f"→ complete .check.txt {to_check:5.2f} s, → done/ {to_done:5.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
