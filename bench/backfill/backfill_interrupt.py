"""How long ``sohoa backfill`` takes to stop after Ctrl-C, against a baseline checkout, in one script.

Makes a small case tree (tiny one-page scans), starts a real ``python -m cli backfill`` in its own
process group against a temporary Prefect server, waits until two files are reported, sends SIGINT
to the group (what a terminal's Ctrl-C does) and measures until the process has exited. Each code
tree runs ``--runs`` times on a fresh data directory; the baseline (``--baseline DIR``, e.g. the main
worktree) runs in the same script so the ratio is meaningful on a busy machine.

    python bench/backfill/backfill_interrupt.py [--runs 2] [--baseline /work/main]
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def one_run(code: Path, api_url: str, work: Path) -> tuple[float, int, str]:
    from flows.backfill_report import read_rows
    from tests.test_backfill import make_tree

    make_tree(work / "src", per_case=4, no_case=0)
    report = work / "report.csv"
    env = os.environ | {"PYTHONPATH": str(code), "PREFECT_API_URL": api_url, "SOHOA_DATA_DIR": str(work / "data")}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "backfill", str(work / "src"), "--report", str(report),
                             "--concurrency", "2"], cwd=work, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    while len(read_rows(report)) < 2 and proc.poll() is None:
        time.sleep(0.1)
    sent = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _out, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        _out, err = proc.communicate()
    return time.monotonic() - sent, proc.returncode, err


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout to compare with")
    args = ap.parse_args()
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    trees = [("this tree", REPO)] + ([("baseline", args.baseline.resolve())] if args.baseline else [])
    with prefect_test_harness(server_startup_timeout=180):
        api = str(PREFECT_API_URL.value())
        results: dict[str, list[float]] = {}
        for name, code in trees:
            for n in range(args.runs):
                with tempfile.TemporaryDirectory(prefix="sohoa-int-") as tmp:
                    seconds, rc, err = one_run(code, api, Path(tmp))
                tracebacks = err.count("Traceback")
                print(f"{name} run {n + 1}: stopped {seconds:.2f} s after Ctrl-C, exit {rc}, "
                      f"{tracebacks} tracebacks, {len(err.splitlines())} stderr lines", flush=True)
                results.setdefault(name, []).append(seconds)
    for name, times in results.items():
        print(f"{name}: median {statistics.median(times):.2f} s over {len(times)} runs")
    if args.baseline:
        print(f"ratio this/baseline: {statistics.median(results['this tree']) / statistics.median(results['baseline']):.3f}")


if __name__ == "__main__":
    main()
