"""Load on the web app: N concurrent signed-in clients for T seconds, and server memory while streaming a large PDF.

    python bench/web/web_load.py [--clients 50] [--seconds 60] [--big-mb 200] [--postgres] [--workers 1]

Starts ``sohoa serve`` (a subprocess, local store + SQLite, or with ``--postgres`` a throw-away
database on the local PostgreSQL; ``--workers`` replicas of it on one port range, the clients spread
over them as a proxy would; the sample dossier ingested), signs in
one session per client, then each client loops (bounded by the deadline) over a mix of search
(40%), case page (30%) and searchable-PDF download (30%). Reports errors and p50/p95 per kind. Then
one client downloads a generated ``--big-mb`` MB PDF twice (first from the store, then from the
web cache) while the server's RSS is sampled every 50 ms: RSS growth is reported as a ratio of the
file size (flat streaming ≈ 0). Timing figures are for this machine and run only; nothing asserts.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.web_fixtures import CASE_A, PASSWORD, WebServer, env, seed  # noqa: E402

BIG_CASE = "000.00.14.H56-181012-0003"


def make_big_pdf(path: Path, megabytes: int) -> None:
    """A PDF of incompressible grey images, ``megabytes`` MB in all (10 MB a page)."""
    import pikepdf

    pdf = pikepdf.new()
    side = 3162  # 3162² ≈ 10 MB of 8-bit grey
    for _ in range(max(1, megabytes // 10)):
        image = pikepdf.Stream(pdf, os.urandom(side * side))
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height, image.BitsPerComponent = side, side, 8
        image.ColorSpace = pikepdf.Name.DeviceGray
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        page.Contents = pikepdf.Stream(pdf, b"q 595 0 0 842 0 0 cm /Im0 Do Q")
    pdf.save(path)


def store_big(data_env: dict[str, str], pdf: Path, pages: int) -> str:
    """Record the big PDF as the one document of BIG_CASE (searchable PDF and original)."""
    import datetime as dt

    with env(**data_env):
        from flows.common import open_archive
        from models import DocumentRecord
        from storage.objectstore import searchable_key, sha256_file, source_key

        archive = open_archive()
        sha = sha256_file(pdf)
        doc = sha[:20]
        keys = {"source": source_key(BIG_CASE, doc, "pdf"), "searchable_pdf": searchable_key(BIG_CASE, doc)}
        for key in keys.values():
            archive.store.put_file(key, pdf, metadata={"case-id": BIG_CASE, "document-id": doc, "sha256": sha},
                                   content_type="application/pdf")
        archive.record(DocumentRecord(case_id=BIG_CASE, document_id=doc, source_sha256=sha, source_name="big.pdf",
                                      created_at=dt.datetime.now(dt.UTC).isoformat(), page_count=pages, keys=keys))
        return doc


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def sign_in(base: str, name: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base, timeout=60, limits=httpx.Limits(max_connections=2))
    page = await client.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = await client.post("/sign-in", data={"name": name, "password": PASSWORD, "csrf": csrf})
    if r.status_code != 303:
        raise RuntimeError(f"sign-in failed: {r.status_code}")
    return client


async def load(bases: list[str], clients: int, seconds: float, doc: str) -> dict[str, list[float]]:
    sessions = [await sign_in(bases[i % len(bases)], "lan") for i in range(clients)]
    timings: dict[str, list[float]] = {"search": [], "case": [], "pdf": []}
    errors: list[str] = []
    words = ["quyet dinh", "giấy phép xây dựng", "ho so", "nguyen van hung", "000.00.14.H56", "thu tuc hanh chinh"]
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient, seed_: int) -> None:
        rng = random.Random(seed_)
        while time.monotonic() < deadline:
            kind = rng.choices(["search", "case", "pdf"], weights=[4, 3, 3])[0]
            url = {"search": f"/search?q={rng.choice(words)}", "case": f"/cases/{CASE_A}",
                   "pdf": f"/api/v1/cases/{CASE_A}/documents/{doc}/searchable.pdf"}[kind]
            started = time.perf_counter()
            try:
                r = await client.get(url)
                if r.status_code != 200:
                    errors.append(f"{kind} {r.status_code}")
            except httpx.HTTPError as exc:
                errors.append(f"{kind} {type(exc).__name__}")
                continue
            timings[kind].append(time.perf_counter() - started)

    await asyncio.gather(*(worker(c, i) for i, c in enumerate(sessions)))
    for c in sessions:
        await c.aclose()
    timings["errors"] = errors  # type: ignore[assignment]
    return timings


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) >= 2 else float("nan")


def big_download(server: WebServer, case: str, doc: str, size: int) -> list[tuple[str, int, int, float]]:
    assert server.process is not None
    out = []
    with httpx.Client(base_url=server.url, timeout=600) as client:
        page = client.get("/sign-in")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
        client.post("/sign-in", data={"name": "lan", "password": PASSWORD, "csrf": csrf})
        for label in ("first (from the store)", "second (from the web cache)"):
            base = rss_kb(server.process.pid)
            peak = [base]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak[0] = max(peak[0], rss_kb(server.process.pid))
                    time.sleep(0.05)

            t = threading.Thread(target=sample)
            t.start()
            started = time.perf_counter()
            got = 0
            with client.stream("GET", f"/api/v1/cases/{case}/documents/{doc}/searchable.pdf") as r:
                for chunk in r.iter_bytes(1 << 20):
                    got += len(chunk)
            stop.set()
            t.join()
            assert got == size, (got, size)
            out.append((label, base, peak[0], time.perf_counter() - started))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--big-mb", type=int, default=200)
    ap.add_argument("--postgres", action="store_true", help="catalog on the local PostgreSQL (a throw-away database)")
    ap.add_argument("--workers", type=int, default=1, help="sohoa serve replicas sharing the store and catalog")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sohoa-web-bench-"))
        from pipeline.sample import make_sample_dossier

        extra = {}
        if args.postgres:
            from tests.servers import temporary_pg_database

            extra["SOHOA_DATABASE_URL"] = stack.enter_context(temporary_pg_database())
        print(f"catalog: {'PostgreSQL' if args.postgres else 'SQLite'}, load average {os.getloadavg()[0]:.1f}")
        sample = make_sample_dossier(Path(tmp) / "sample")
        data = seed(Path(tmp) / "data", sample, extra_env=extra)
        big = Path(tmp) / "big.pdf"
        make_big_pdf(big, args.big_mb)
        big_doc = store_big(data, big, max(1, args.big_mb // 10))
        servers = [WebServer(env=data) for _ in range(max(1, args.workers))]
        server = servers[0]
        for s_ in servers:
            s_.start()
        try:
            with env(**data):
                from flows.common import open_archive

                doc = open_archive().catalog.documents_for_case(CASE_A)[0].document_id
            print(f"{len(servers)} server(s), RSS at start {rss_kb(server.process.pid) / 1024:.0f} MB (first)")
            t0 = time.perf_counter()
            timings = asyncio.run(load([s_.url for s_ in servers], args.clients, args.seconds, doc))
            wall = time.perf_counter() - t0
            errors = timings.pop("errors")
            total = sum(len(v) for v in timings.values())
            print(f"\n{args.clients} clients, {args.seconds:.0f} s: {total} requests ({total / wall:.1f}/s), "
                  f"{len(errors)} errors {sorted(set(errors))[:5]}")
            print(f"{'kind':8} {'n':>6} {'p50 ms':>8} {'p95 ms':>8}")
            for kind, values in timings.items():
                print(f"{kind:8} {len(values):6d} {pct(values, 50):8.1f} {pct(values, 95):8.1f}")
            print(f"server RSS after load {rss_kb(server.process.pid) / 1024:.0f} MB")
            size = big.stat().st_size
            print(f"\nstreaming a {size / 1e6:.0f} MB PDF:")
            for label, base, peak, secs in big_download(server, BIG_CASE, big_doc, size):
                print(f"  {label}: RSS {base / 1024:.0f} → peak {peak / 1024:.0f} MB "
                      f"(growth {(peak - base) * 1024 / size:.3f} × file size), {size / 1e6 / secs:.0f} MB/s")
        finally:
            for s_ in servers:
                s_.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
