"""The distributed backfill: the listing cut into chunks run by workers as deployment runs, rows collected."""
from __future__ import annotations

import datetime as dt
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from models import SohoaError
from flows.backfill_report import ReportWriter, read_rows
from flows.backfill_run import failed_row, no_case_row, run_items
from flows.backfill_source import Item

WORK_POOL = "sohoa"
CHUNK_FLOW = "backfill-chunk"
CHUNK_DEPLOYMENT = f"{CHUNK_FLOW}/sohoa"
CHUNK_ATTEMPTS = 3
HEARTBEAT_SECONDS = 5.0


@flow(name=CHUNK_FLOW, log_prints=False)
def backfill_chunk(files: list[dict[str, Any]], rows_path: str, concurrency: int = 2,
                   jobs: int | None = 1) -> dict[str, int]:
    """One share of a distributed backfill, run by a worker: ingest these files, write their rows."""
    rows = Path(rows_path)
    beat = rows.with_suffix(".alive")
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.is_set():
            beat.touch()
            stop.wait(HEARTBEAT_SECONDS)

    writer = ReportWriter(rows, append=True)
    thread = threading.Thread(target=heartbeat, name="backfill-heartbeat", daemon=True)
    thread.start()
    try:
        run_items((Item(**f) for f in files), concurrency=concurrency, on_row=writer.add, jobs=jobs)
    finally:
        stop.set()
        writer.close()
    return writer.counts


@dataclass
class _Chunk:
    number: int
    files: list[Item]
    attempt: int = 0
    run_id: Any = None
    rows_path: Path | None = None
    submitted_at: float = 0.0
    kept: list[dict[str, str]] = field(default_factory=list)  # rows of earlier, failed attempts


def chunks_of(items: Iterable[Item], *, size: int, on_no_case: Callable[[Item], None]) -> Iterator[list[Item]]:
    """Cut the listing into chunks of about ``size`` files that end where a case ends (up to 4× size)."""
    chunk: list[Item] = []
    for item in items:
        if item.case_id is None and not item.case_from_qr:
            on_no_case(item)
            continue
        if chunk and (len(chunk) >= 4 * size or (len(chunk) >= size and item.case_id != chunk[-1].case_id)):
            yield chunk
            chunk = []
        chunk.append(item)
    if chunk:
        yield chunk


def chunk_deployment_exists() -> bool:
    """True when a ``sohoa worker`` has registered the chunk deployment on the configured server."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(CHUNK_DEPLOYMENT)
        except ObjectNotFound:
            return False
    return True


def run_chunks(items: Iterable[Item], *, parts_dir: Path, on_row: Callable[[dict[str, Any]], None],
               concurrency: int, jobs: int | None, chunk_size: int, chunks_in_flight: int,
               stale_after: float, on_tick: Callable[[int, int], None] | None = None,
               poll: float = 2.0) -> None:
    """Run chunks as deployment runs on the work pool, ``chunks_in_flight`` at a time, and collect rows."""
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.states import Crashed

    parts_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logger = get_run_logger()
    inflight: dict[int, _Chunk] = {}

    def submit(chunk: _Chunk) -> None:
        done_paths = {r["path"] for r in chunk.kept}
        todo = [f for f in chunk.files if f.path not in done_paths]
        chunk.attempt += 1
        chunk.rows_path = parts_dir / f"{stamp}-chunk{chunk.number:05d}-a{chunk.attempt}.csv"
        run = run_deployment(
            CHUNK_DEPLOYMENT, timeout=0, as_subflow=True,
            flow_run_name=f"chunk-{chunk.number:05d}-a{chunk.attempt} ({len(todo)} tệp)",
            parameters={"files": [asdict(f) for f in todo], "rows_path": str(chunk.rows_path),
                        "concurrency": concurrency, "jobs": jobs})
        chunk.run_id, chunk.submitted_at = run.id, time.monotonic()
        inflight[chunk.number] = chunk

    def finish(chunk: _Chunk, rows: list[dict[str, str]]) -> None:
        for row in chunk.kept + rows:
            on_row(row)
        del inflight[chunk.number]

    def check(client) -> None:
        extra_files = extra_pages = 0
        for chunk in list(inflight.values()):
            state = client.read_flow_run(chunk.run_id).state
            rows = read_rows(chunk.rows_path)
            if state is not None and state.is_completed():
                finish(chunk, rows)
                continue
            beat = chunk.rows_path.with_suffix(".alive")
            last_beat = beat.stat().st_mtime if beat.exists() else None
            silent = (state is not None and state.is_running() and last_beat is not None
                      and time.time() - last_beat > stale_after)
            if state is not None and (state.is_final() or silent):
                if silent:  # the worker died with the run: tell the server so the UI shows it
                    client.set_flow_run_state(chunk.run_id, Crashed(
                        message=f"no heartbeat for {stale_after:.0f} s (worker gone)"), force=True)
                chunk.kept += rows
                reason = state.message or state.type.value
                logger.warning("chunk %d attempt %d ended %s (%s)", chunk.number, chunk.attempt,
                               "silent" if silent else state.type.value, reason)
                if chunk.attempt < CHUNK_ATTEMPTS:
                    submit(chunk)
                else:
                    done_paths = {r["path"] for r in chunk.kept}
                    gone = [failed_row(f, SohoaError(
                        f"the worker's chunk run failed {CHUNK_ATTEMPTS} times ({reason}); run the backfill again",
                        f"lượt chạy trên worker hỏng {CHUNK_ATTEMPTS} lần ({reason}); hãy chạy lại backfill"), 0.0)
                        for f in chunk.files if f.path not in done_paths]
                    finish(chunk, gone)
                continue
            extra_files += len(chunk.kept) + len(rows)
            extra_pages += sum(int(r["pages"]) for r in chunk.kept + rows
                               if r["status"] == "stored" and r["pages"].isdigit())
        if on_tick:
            on_tick(extra_files, extra_pages)

    numbers = iter(range(1, sys.maxsize))
    with get_client(sync_client=True) as client:
        try:
            for files in chunks_of(items, size=chunk_size, on_no_case=lambda it: on_row(no_case_row(it))):
                while len(inflight) >= chunks_in_flight:
                    time.sleep(poll)
                    check(client)
                submit(_Chunk(number=next(numbers), files=files))
            while inflight:
                time.sleep(poll)
                check(client)
        except BaseException:
            # Stopped (Ctrl-C) or broken: cancel our queued and running chunks, so a rerun does not
            # race with them; what they finished is stored and will be skipped.
            from prefect.states import Cancelling

            for chunk in inflight.values():
                try:
                    client.set_flow_run_state(chunk.run_id, Cancelling(message="backfill stopped"), force=True)
                except Exception:  # noqa: BLE001 - best effort while stopping
                    pass
            raise
