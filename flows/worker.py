"""``sohoa worker``: make this machine take a share of distributed backfills from the Prefect server.

It ensures the ``sohoa`` process work pool exists, registers the chunk deployment from this
project's source folder (idempotent; every worker may do it), then becomes a Prefect process
worker on that pool. Workers read sources from a path they all share and write to the same store
and catalog (SOHOA_S3_*, SOHOA_DATABASE_URL).
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

from models import SohoaError
from flows.backfill_chunks import CHUNK_DEPLOYMENT, WORK_POOL

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHUNK_ENTRYPOINT = "flows/backfill_chunks.py:backfill_chunk"


class NoPrefectServer(SohoaError):
    exit_code = 2

    def __init__(self) -> None:
        super().__init__(
            "A worker needs a Prefect server: set PREFECT_API_URL (e.g. http://prefect-server:4200/api).",
            "Worker cần máy chủ Prefect: hãy đặt PREFECT_API_URL (ví dụ http://prefect-server:4200/api).",
        )


def ensure_pool(name: str = WORK_POOL) -> None:
    """Create the process work pool unless it exists (two workers racing is fine)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            try:
                client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            except ObjectAlreadyExists:
                pass


def register_chunk_deployment(pool: str = WORK_POOL) -> str:
    """Register (or update) the chunk deployment, run from this project's folder; returns its name."""
    from flows.backfill_chunks import backfill_chunk

    deployable = backfill_chunk.from_source(source=str(PROJECT_DIR), entrypoint=CHUNK_ENTRYPOINT)
    deployable.deploy(name=CHUNK_DEPLOYMENT.split("/", 1)[1], work_pool_name=pool, build=False, push=False,
                      print_next_steps=False, description="One share of a sohoa backfill (see flows/backfill_chunks.py)")
    return CHUNK_DEPLOYMENT


def worker_command(*, name: str, pool: str = WORK_POOL, limit: int = 1) -> list[str]:
    """The ``prefect worker start`` command line this machine runs."""
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or shutil.which("prefect") or "prefect"
    return [prefect, "worker", "start", "--pool", pool, "--type", "process", "--name", name,
            "--limit", str(limit), "--install-policy", "never"]


def run_worker(*, name: str | None = None, pool: str = WORK_POOL, limit: int = 1) -> None:
    """Prepare the pool and deployment, then replace this process with a Prefect process worker."""
    if not os.environ.get("PREFECT_API_URL"):
        raise NoPrefectServer()
    name = name or f"sohoa-{socket.gethostname()}-{os.getpid()}"
    ensure_pool(pool)
    register_chunk_deployment(pool)
    # The flow-run processes inherit this: each report row says which worker ran its file.
    os.environ["SOHOA_WORKER_NAME"] = name
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    cmd = worker_command(name=name, pool=pool, limit=limit)
    print(f"sohoa worker {name}: pool {pool}, deployment {CHUNK_DEPLOYMENT}, {limit} chunk(s) at a time",
          file=sys.stderr, flush=True)
    os.chdir(PROJECT_DIR)
    os.execv(cmd[0], cmd)
