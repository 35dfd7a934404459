#!/usr/bin/env python3
"""Issue 12 follow-up: the service storing a job with and without reusing the pages it already checked.

One run, one ``sohoa pdf`` baseline per size: for one page and for ten pages (one TIFF), ``sohoa pdf``,
then the service with the reuse switched off (the intake flow reads and checks every page again, as
before), then with it on. New pages for each, so nothing is "already stored". Ratios are against
``sohoa pdf`` of the same size in the same round. Parts and helpers are bench/desk/desk_bench.py's.

Usage:  .venv/bin/python bench/desk/desk_reuse_bench.py [--repeat 1]
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.desk.desk_bench import CASE, bench_environment, as_tiff, make_pages, one_dossier, sohoa_pdf  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    tmp = bench_environment("sohoa-desk-reuse-")

    from flows import job_check  # plan_requests reuses the kept pages through job_check._checked_pages
    from flows import service as service_module

    reuse = job_check._checked_pages  # noqa: SLF001
    service = service_module.IntakeService(workers=2, check_workers=4).start()
    if not service.wait_ready(300):
        print(f"Prefect did not start: {service.prefect_error}", file=sys.stderr)
        return 1
    rows: dict[str, list[float]] = {f"{k}_{n}": [] for k in ("pdf", "before", "after") for n in ("1p", "10p")}
    seq = 0
    try:
        for r in range(args.repeat):
            for n, size in (("1p", 1), ("10p", 10)):
                # sohoa pdf first, then the two service variants, in turn first (noise of a shared machine).
                for what in ("pdf", "before", "after") if r % 2 == 0 else ("pdf", "after", "before"):
                    pages = make_pages(tmp / f"{n}-{what}-{r}", size, f"{what[0].upper()}{size}{r}")
                    src = pages[0] if size == 1 else as_tiff(pages, tmp / f"{n}-{what}-{r}.tif")
                    if what == "pdf":
                        rows[f"pdf_{n}"].append(sohoa_pdf([src], tmp / f"{n}-{r}.pdf"))
                        continue
                    job_check._checked_pages = reuse if what == "after" else (lambda *a: None)  # noqa: SLF001
                    seq += 1
                    w = one_dossier(service, [src], CASE.format(seq), size)
                    if w.status != "stored":
                        print(f"{n} {what}: {w.status}", file=sys.stderr)
                    rows[f"{what}_{n}"].append(w.final)
                    print(f"{n} {what}: {w.final:.2f} s", file=sys.stderr)
    finally:
        job_check._checked_pages = reuse  # noqa: SLF001
        service.stop()
    med = {k: statistics.median(v) for k, v in rows.items()}
    print("| measure | `sohoa pdf` | service before (pages read twice) | ratio | service after (reused) | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n, label in (("1p", "one page"), ("10p", "ten pages (one TIFF)")):
        p = med[f"pdf_{n}"]
        print(f"| {label}: upload complete → stored | {p:.2f} s | {med[f'before_{n}']:.2f} s | "
              f"{med[f'before_{n}'] / p:.2f}× | {med[f'after_{n}']:.2f} s | {med[f'after_{n}'] / p:.2f}× |")
    print("All runs: " + ", ".join(f"{k}={[round(x, 2) for x in v]}" for k, v in rows.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
