#!/usr/bin/env python3
"""Backfill throughput with 1 and 2 workers: pages/minute, peak memory (RSS), and the 2-vs-1 ratio.

Makes N synthetic office-quality pages (/work/shared/bench/synth_scans.py, text from
/work/shared/seed/*.txt) as one PNG per page in case folders of 10, then for each worker count:
starts a real Prefect server (temporary PREFECT_HOME), K ``sohoa worker`` processes, and runs
``sohoa backfill`` into a fresh archive folder and a fresh PostgreSQL catalog (SQLite when
PostgreSQL is unreachable). RSS is sampled every 0.5 s over every process we started and their
children (workers, flow-run processes, Tesseract), and over the backfill parent.

Usage: python bench/backfill/backfill_bench.py [--pages 200] [--dpi 300] [--workers 1 2] [--concurrency 1]
Each worker runs one chunk at a time with ``--concurrency`` files in flight, one page at a time each.
"""
from __future__ import annotations

import argparse
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo

BIN = Path(sys.executable).parent
SYNTH = SHARED / "bench" / "synth_scans.py"
SEED = SHARED / "seed"
PG_ADMIN = os.environ.get("SOHOA_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_pages(out: Path, pages: int, dpi: int) -> int:
    """Synthetic pages spread over case folders of 10 pages, one file per page; returns the count."""
    import itertools

    made = 0
    texts = sorted(SEED.glob("*.txt"))
    for i, text in enumerate(itertools.cycle(texts)):  # a text gives only so many pages: go round again
        if made >= pages:
            break
        tmp = out / f".synth{i}"
        subprocess.run([sys.executable, str(SYNTH), str(text), str(tmp), "--pages", str(pages - made),
                        "--profile", "office", "--dpi", str(dpi), "--seed", str(61 + i)], check=True,
                       stdout=subprocess.DEVNULL)
        for page in sorted((tmp / "pages").glob("*.png")):
            case = f"000.00.14.H56-190312-{made // 10 + 1:04d}"
            (out / case).mkdir(parents=True, exist_ok=True)
            page.rename(out / case / f"{made:05d}.png")
            made += 1
    return made


def _children(pid: int) -> set[int]:
    out = {pid}
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                out.update(kids)
                frontier.extend(kids)
        except OSError:
            continue
    return out


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssSampler(threading.Thread):
    """Peak total RSS of process trees, and the peak of the single largest process."""

    def __init__(self, roots: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.roots = roots
        self.peak_total: dict[str, int] = dict.fromkeys(roots, 0)
        self.peak_single = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for name, root in self.roots.items():
                sizes = [_rss_kb(p) for p in _children(root)]
                self.peak_total[name] = max(self.peak_total[name], sum(sizes))
                self.peak_single = max(self.peak_single, max(sizes, default=0))
            self.stop.wait(0.5)


def catalog_url(root: Path) -> tuple[str, callable]:
    try:
        import sqlalchemy as sa

        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        name = f"sohoa_bench_{secrets.token_hex(4)}"
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\''))

        def drop() -> None:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop
    except Exception as exc:  # noqa: BLE001 - benchmark still runs on SQLite
        print(f"(PostgreSQL unavailable: {exc}; using SQLite)", file=sys.stderr)
        return f"sqlite:///{root / 'catalog.sqlite3'}", lambda: None


def run_once(source: Path, pages: int, workers: int, concurrency: int, root: Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    db, drop = catalog_url(root)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SOHOA_"))} | {
        "PREFECT_HOME": str(root / "prefect"), "PREFECT_API_URL": api, "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_LOGGING_LEVEL": "WARNING", "SOHOA_DATA_DIR": str(root / "data"),
        "SOHOA_DATABASE_URL": db, "OMP_THREAD_LIMIT": "1"}
    procs: list[subprocess.Popen] = []
    log = open(root / "bench.log", "ab")  # noqa: SIM115

    def start(cmd: list[str]) -> subprocess.Popen:
        p = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root)
        procs.append(p)
        return p

    try:
        start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)])
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{api}/health", timeout=2)  # noqa: S310
                break
            except OSError:
                time.sleep(0.5)
        worker_procs = {f"w{i}": start([str(BIN / "sohoa"), "worker", "--name", f"w{i}"])
                        for i in range(1, workers + 1)}
        time.sleep(15)  # workers register the deployment and start polling
        started = time.monotonic()
        parent = start([str(BIN / "sohoa"), "backfill", str(source), "--report", str(root / "report.csv"),
                        "--concurrency", str(concurrency), "--chunk-size", "10", "--chunks-in-flight",
                        str(2 * workers)])
        sampler = RssSampler({"backfill": parent.pid} | {name: p.pid for name, p in worker_procs.items()})
        sampler.start()
        rc = parent.wait()
        seconds = time.monotonic() - started
        sampler.stop.set()
        sampler.join()
        if rc not in (0, 3):
            raise SystemExit(f"backfill exited {rc}; see {root / 'bench.log'}")
        import csv

        rows = list(csv.DictReader(open(root / "report.csv", encoding="utf-8")))
        stored = sum(int(r["pages"] or 0) for r in rows if r["status"] == "stored")
        return {"workers": workers, "pages": stored, "files": len(rows), "seconds": seconds,
                "pages_per_min": stored / seconds * 60,
                "peak_rss_mb": {k: v / 1024 for k, v in sampler.peak_total.items()},
                "peak_single_mb": sampler.peak_single / 1024,
                "by_worker": {w: sum(1 for r in rows if r["worker"] == w) for w in worker_procs},
                "statuses": {st: sum(1 for r in rows if r["status"] == st) for st in {r["status"] for r in rows}},
                "reasons": sorted({r["reason"][:160] for r in rows if r["status"] == "failed"})}
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        log.close()
        drop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=200)
    ap.add_argument("--dpi", type=int, default=300)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--concurrency", type=int, default=1, help="files in flight per worker")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sohoa-backfill-bench-") as tmp:
        source = Path(tmp) / "source"
        made = make_pages(source, args.pages, args.dpi)
        print(f"{made} synthetic office pages at {args.dpi} dpi in {source}")
        results = []
        for n in args.workers:
            r = run_once(source, made, n, args.concurrency, Path(tmp) / f"run{n}")
            results.append(r)
            rss = ", ".join(f"{k} {v:.0f} MB" for k, v in r["peak_rss_mb"].items())
            print(f"{n} worker(s): {r['pages']} pages in {r['seconds']:.0f} s = {r['pages_per_min']:.1f} pages/min; "
                  f"peak RSS (process trees) {rss}; largest single process {r['peak_single_mb']:.0f} MB; "
                  f"files per worker {r['by_worker']}; statuses {r['statuses']} {r['reasons']}")
        if len(results) >= 2:
            print(f"scaling {results[-1]['workers']} vs {results[0]['workers']} workers: "
                  f"{results[-1]['pages_per_min'] / results[0]['pages_per_min']:.2f}x "
                  f"(on {os.cpu_count()} cores shared with other users)")


if __name__ == "__main__":
    main()
