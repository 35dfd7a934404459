"""Where a page's time goes: wall and CPU seconds per pipeline step, one page at a time.

``python bench/ocr/profile_steps.py SET[:N] ...`` (SET as in bench/ocr/quick_cer.py) runs ``process_document``
on each of the first N pages (default 1) alone, one job, with every step of interest wrapped: wall
seconds, this process's CPU seconds (``time.process_time``, Python plus OpenCV's threads) and child
CPU seconds (Tesseract), summed per step over the pages, with call counts and the image sizes handed
to Tesseract. Steps nest (``clean_page`` includes ``flatten_background``); the table shows that
nesting. ``--cprofile FILE`` also writes cProfile statistics of the same runs; ``--memory`` adds each
step's peak of traced allocations (numpy and OpenCV arrays) above what was held when it started.
"""
from __future__ import annotations

import argparse
import cProfile
import functools
import os
import pstats
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("OMP_THREAD_LIMIT", "1")

import quick_cer

STEPS = {
    "pipeline.reader": ["_write_frame"],
    "pipeline.document": ["check_pages", "_rectify_photo", "_clean_and_ocr", "read_cleaned"],
    "pipeline.camera": ["find_page", "rectify", "flatten_light"],
    "pipeline.preflight": ["preflight"],
    # clean_page calls its steps through pipeline.clean's names: wrapped there, they are timed where called
    "pipeline.clean": ["clean_page", "_read", "_has_colour", "without_stamp_ink",
                       "find_border", "_fill_border", "flatten_background", "binarise", "_sideways",
                       "_orientation", "measure_skew", "_rotate", "despeckle", "write_image"],
    "pipeline.background": ["_stamp_mask"],
    "pipeline.ocr": ["recognise", "detect_orientation"],
    "pipeline.pdf": ["build_searchable_pdf", "encode_raster_page"],
    "pipeline.pdf_compress": ["_load_bilevel", "_separate_layers", "_jpeg_bytes", "_g4_bytes"],
}

_local = threading.local()
# n, wall, cpu, child cpu, peak MB of numpy/OpenCV arrays allocated within the step (with --memory)
totals: dict[tuple[str, ...], list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0.0, 0.0])
sizes: dict[str, list[str]] = defaultdict(list)


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def wrap(module, name: str) -> None:
    fn = getattr(module, name)

    @functools.wraps(fn)
    def timed(*args, **kwargs):
        stack = getattr(_local, "stack", ())
        key = (*stack, name)
        _local.stack = key
        peaks = getattr(_local, "peaks", None)
        tracing = tracemalloc.is_tracing()
        if tracing:
            # tracemalloc keeps one peak: fold it into the caller's before restarting it for this step.
            if peaks is None:
                peaks = _local.peaks = []
            current, peak = tracemalloc.get_traced_memory()
            if peaks:
                peaks[-1] = max(peaks[-1], peak)
            tracemalloc.reset_peak()
            peaks.append(0)
            base = current
        w, c, k = time.perf_counter(), time.process_time(), _children_cpu()
        if name in ("recognise", "detect_orientation"):
            from PIL import Image

            with Image.open(args[0]) as im:
                sizes[name].append(f"{im.size[0]}x{im.size[1]}{im.mode}")
        try:
            return fn(*args, **kwargs)
        finally:
            row = totals[key]
            row[0] += 1
            row[1] += time.perf_counter() - w
            row[2] += time.process_time() - c
            row[3] += _children_cpu() - k
            if tracing:
                mine = max(peaks.pop(), tracemalloc.get_traced_memory()[1])
                row[4] = max(row[4], (mine - base) / 2**20)
                if peaks:
                    peaks[-1] = max(peaks[-1], mine)
            _local.stack = stack

    setattr(module, name, timed)


def main() -> None:
    import importlib

    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="+")
    ap.add_argument("--cprofile", type=Path)
    ap.add_argument("--memory", action="store_true", help="peak MB of arrays per step (tracemalloc; slower)")
    a = ap.parse_args()
    if a.memory:
        tracemalloc.start()
    for mod, names in STEPS.items():
        m = importlib.import_module(mod)
        for n in names:
            if hasattr(m, n):  # an older tree (profiling main for a before/after) may lack a step
                wrap(m, n)
    from pipeline import document

    prof = cProfile.Profile() if a.cprofile else None
    for arg in a.sets:
        name, _, n = arg.partition(":")
        ps = quick_cer.load(name, int(n or 1))
        totals.clear()
        sizes.clear()
        wall = cpu = child = 0.0
        for page in ps.pages:
            with tempfile.TemporaryDirectory() as tmp:
                w, c, k = time.perf_counter(), time.process_time(), _children_cpu()
                if prof:
                    prof.enable()
                document.process_document([page], workdir=Path(tmp) / "w", out_pdf=Path(tmp) / "o.pdf",
                                          jobs=1, keep_blank=True)
                if prof:
                    prof.disable()
                wall += time.perf_counter() - w
                cpu += time.process_time() - c
                child += _children_cpu() - k
        print(f"\n## {name}: {len(ps.pages)} page(s), total wall {wall:.2f} s, own CPU {cpu:.2f} s, "
              f"Tesseract CPU {child:.2f} s (load {os.getloadavg()[0]:.1f})")
        print(f"{'step':44} {'calls':>5} {'wall s':>7} {'cpu s':>7} {'tess s':>7}" + ("  peak MB" if a.memory else ""))
        for key in sorted(totals):
            n_, w_, c_, k_, m_ = totals[key]
            print(f"{'  ' * (len(key) - 1) + key[-1]:44} {n_:5d} {w_:7.2f} {c_:7.2f} {k_:7.2f}"
                  + (f" {m_:8.0f}" if a.memory else ""))
        for k_, v in sizes.items():
            print(f"{k_} images: {', '.join(v)}")
    if prof:
        prof.dump_stats(a.cprofile)
        pstats.Stats(str(a.cprofile)).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
