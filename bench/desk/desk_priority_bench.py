#!/usr/bin/env python3
"""Issue 12 follow-up: a verdict while another dossier is being OCR'd, and that dossier's storing, under two
ways of giving the page checks priority over OCR, in one run.

- ``static``: as until 2026-11-29, the storing threads (their OCR threads and Tesseract processes)
  run at nice 10 (``SOHOA_OCR_NICE``) all the time;
- ``lowered``: now, OCR runs at the service's own priority and only the Tesseract processes in
  flight are lowered to nice 10 when a page is checked (``flows.ocr_priority.lower_ocr``).

Per round and mode: a ten-page dossier (one TIFF) is uploaded; once its OCR has started, a one-page
dossier is uploaded and the time from its upload to its verdict is taken (the operator at the next
counter); then the time from the ten-page upload to stored. The modes alternate which goes first.
Helpers are bench/desk/desk_bench.py's; the check lane is on in both modes.

Usage:  .venv/bin/python bench/desk/desk_priority_bench.py [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.desk.desk_bench import CASE, bench_environment, LoadSampler, Watch, as_tiff, make_pages, submit  # noqa: E402


def static_nice() -> None:
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    tmp = bench_environment("sohoa-desk-priority-")

    from flows import service as service_module

    sampler = LoadSampler().start()
    service = service_module.IntakeService(workers=2, check_workers=4).start()
    if not service.wait_ready(300):
        print(f"Prefect did not start: {service.prefect_error}", file=sys.stderr)
        return 1
    lowered_lane, lowered_pool = service.check_lane.on_place, service._store_pool  # noqa: SLF001
    static_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sohoa-store-static", initializer=static_nice)
    rows: dict[str, list[float]] = {f"{m}_{k}": [] for m in ("static", "lowered") for k in ("verdict", "stored")}
    failures: list[str] = []
    seq = 0
    try:
        for r in range(args.repeat):
            for mode in ("static", "lowered") if r % 2 == 0 else ("lowered", "static"):
                service.check_lane.on_place = None if mode == "static" else lowered_lane
                service._store_pool = static_pool if mode == "static" else lowered_pool  # noqa: SLF001
                ten = as_tiff(make_pages(tmp / f"ten-{r}-{mode}", 10, f"P{r}{mode[0]}"), tmp / f"ten-{r}-{mode}.tif")
                [one] = make_pages(tmp / f"one-{r}-{mode}", 1, f"Q{r}{mode[0]}")
                seq += 1
                ten_id, ten_at = submit(service, [ten], CASE.format(2000 + seq), operator="a")
                deadline = time.perf_counter() + 300
                while not any((d.pages_done or 0) for d in service.store.require(ten_id).documents):
                    if time.perf_counter() > deadline:
                        raise RuntimeError("the ten-page dossier's OCR did not start")
                    time.sleep(0.05)
                one_id, one_at = submit(service, [one], CASE.format(3000 + seq), operator="b")
                w1 = Watch(service.store, one_id, one_at, 1).run()
                w10 = Watch(service.store, ten_id, ten_at, 10).run()
                failures += [f"{mode}: {w.status}" for w in (w1, w10) if w.status != "stored"]
                rows[f"{mode}_verdict"].append(w1.first)
                rows[f"{mode}_stored"].append(w10.final)
                print(f"round {r + 1} {mode}: verdict {w1.first:.2f} s, ten pages stored {w10.final:.2f} s",
                      file=sys.stderr)
    finally:
        service._store_pool = lowered_pool  # noqa: SLF001
        service.stop()
        static_pool.shutdown()
    med = {k: statistics.median(v) for k, v in rows.items() if v}
    print(f"# Verdicts during another dossier's OCR ({time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores, "
          f"{args.repeat} rounds, medians; load average {sampler.stop()})\n")
    print("| OCR priority | one-page verdict while a ten-page dossier is OCR'd | ten pages: upload → stored |")
    print("| --- | --- | --- |")
    for mode, label in (("static", "nice 10 all the time (before)"),
                        ("lowered", "own priority, lowered while pages are checked (now)")):
        print(f"| {label} | {med[f'{mode}_verdict']:.2f} s | {med[f'{mode}_stored']:.2f} s |")
    print(f"\nAll runs: {', '.join(f'{k}={[round(x, 2) for x in v]}' for k, v in rows.items())}.")
    print(f"Failed or not stored: {', '.join(failures) if failures else 'none'}.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
