"""The backfill scaled out: a real ``prefect server start``, two ``sohoa worker`` processes, PostgreSQL.

Nothing is mocked: the workers are Prefect process workers polling the ``sohoa`` pool, each chunk
is a deployment run in its own process, the archive is a shared folder and the catalog a fresh
PostgreSQL database.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from flows.backfill_report import read_rows
from tests.servers import free_port, temporary_pg_database
from tests.test_backfill import make_page

pytestmark = pytest.mark.slow
BIN = Path(sys.executable).parent


def _wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:  # noqa: S310 - our own server
            return resp.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A Prefect server, a shared archive folder, a PostgreSQL catalog and two workers (w1, w2)."""
    root = tmp_path_factory.mktemp("cluster")
    port = free_port()
    api = f"http://127.0.0.1:{port}/api"
    with temporary_pg_database() as database_url:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "SOHOA_"))}
        env |= {
            "PREFECT_HOME": str(root / "prefect-home"), "PREFECT_API_URL": api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
            "PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "SOHOA_DATA_DIR": str(root / "sohoa-data"),
            "SOHOA_DATABASE_URL": database_url,
            "OMP_THREAD_LIMIT": "1",
        }
        procs: dict[str, subprocess.Popen] = {}
        logs = root / "logs"
        logs.mkdir()

        def start(name: str, cmd: list[str]) -> None:
            with open(logs / f"{name}.log", "ab") as log:
                procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                               start_new_session=True, cwd=root)

        try:
            start("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)])
            _wait(lambda: _healthy(api), 120, "the Prefect server")
            for name in ("w1", "w2"):
                start(name, [str(BIN / "sohoa"), "worker", "--name", name])
            _wait(lambda: all(f"Worker {n!r} started" in (logs / f"{n}.log").read_text(errors="replace")
                              or "started!" in (logs / f"{n}.log").read_text(errors="replace")
                              for n in ("w1", "w2")), 120, "both workers")
            yield {"env": env, "root": root, "procs": procs, "logs": logs}
        finally:
            for proc in procs.values():
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs.values():
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)


def _descendants(pid: int) -> set[int]:
    """Every process started (transitively) by ``pid``, from /proc."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        p = frontier.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{p}/task/{task}/children").read_text().split()]
            except OSError:
                continue
            found.update(kids)
            frontier.extend(kids)
    return found


def make_cases(root: Path, prefix: str, cases: int, per_case: int, start: int) -> dict[str, str]:
    out = {}
    n = start
    for c in range(1, cases + 1):
        case = f"000.00.14.H56-{prefix}-{c:04d}"
        for _ in range(per_case):
            out[str(make_page(root / case / f"{n:04d}.png", n).resolve())] = case
            n += 1
    return out


def backfill(cluster, source: Path, report: Path, *extra: str, wait: bool = True):
    cmd = [str(BIN / "sohoa"), "backfill", str(source), "--report", str(report), "--chunk-size", "3",
           "--chunks-in-flight", "4", "--concurrency", "2", *extra]
    log = open(cluster["logs"] / f"backfill-{report.stem}.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=cluster["env"], stdout=log, stderr=subprocess.STDOUT, cwd=cluster["root"])
    if wait:
        assert proc.wait(timeout=240) == 0, (cluster["logs"] / f"backfill-{report.stem}.log").read_text()
    return proc


def manifest_count(cluster, case: str) -> Counter:
    path = cluster["root"] / "sohoa-data" / "objects" / "cases" / case / "manifest.json"
    docs = json.loads(path.read_text("utf-8"))["documents"]
    return Counter(d["source_sha256"] for d in docs)


def test_two_workers_share_the_backfill(cluster, tmp_path):
    files = make_cases(tmp_path / "src", "190312", cases=4, per_case=3, start=1)
    report = tmp_path / "report.csv"
    backfill(cluster, tmp_path / "src", report)
    rows = read_rows(report)
    assert sorted(r["path"] for r in rows) == sorted(files)  # complete, once each
    assert {r["status"] for r in rows} == {"stored"}
    assert {r["worker"] for r in rows} == {"w1", "w2"}  # both took part
    for case in set(files.values()):
        counts = manifest_count(cluster, case)
        assert len(counts) == 3 and set(counts.values()) == {1}  # each file stored exactly once
    for r in rows:
        assert r["case_id"] == files[r["path"]] and r["pages"] == "1"


def test_a_killed_worker_and_the_rerun_complete_everything(cluster, tmp_path):
    files = make_cases(tmp_path / "src", "200203", cases=4, per_case=3, start=500)
    report = tmp_path / "first.csv"
    proc = backfill(cluster, tmp_path / "src", report, "--stale-after", "10", wait=False)
    parts = Path(f"{report}.parts")
    # Kill w1 (and its flow-run process) as soon as it has finished a file of its chunk.
    _wait(lambda: any(r["worker"] == "w1" for p in parts.glob("*.csv") for r in read_rows(p)),
          180, "w1 to finish a file")
    # As a machine that dies would: the worker and the flow-run process it started (its own session).
    w1 = cluster["procs"]["w1"].pid
    for pid in _descendants(w1) | {w1}:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    first = proc.wait(timeout=240)
    rows = read_rows(report)
    assert first == 0, (cluster["logs"] / "backfill-first.log").read_text()
    assert sorted(r["path"] for r in rows) == sorted(files)
    assert {r["status"] for r in rows} <= {"stored", "skipped"}

    again = tmp_path / "again.csv"
    backfill(cluster, tmp_path / "src", again)
    rows = read_rows(again)
    assert sorted(r["path"] for r in rows) == sorted(files)
    assert {r["status"] for r in rows} == {"skipped"}
    for case in set(files.values()):
        counts = manifest_count(cluster, case)
        assert len(counts) == 3 and set(counts.values()) == {1}
