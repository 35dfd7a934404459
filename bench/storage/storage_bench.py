"""Storage benchmark: S3 (SeaweedFS) upload throughput vs the local folder, and search latency on
10,000 catalogued pages, PostgreSQL vs SQLite.

Run: ``.venv/bin/python bench/storage/storage_bench.py`` (starts its own SeaweedFS from the venv's ``weed``;
PostgreSQL at 127.0.0.1:5432, user postgres, trust auth; a throw-away database is made and dropped).
"""
from __future__ import annotations

import argparse
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from models import DocumentRecord, PageText  # noqa: E402
from storage.catalog import Catalog  # noqa: E402
from storage.local import LocalStore  # noqa: E402
from storage.s3 import S3Store  # noqa: E402
from tests.servers import PG_ADMIN_URL, SeaweedServer  # noqa: E402

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo

SEED = SHARED / "seed"
QUERIES = ["quyet dinh", "Quyết định", "thủ tục hành chính", "MỘT CỬA LIÊN THÔNG", "nghi dinh 61",
           "ủy ban nhân dân tỉnh", "ho so", "kế hoạch triển khai", "tiếp nhận và trả kết quả", "chinh phu"]


def _upload(store, files: list[Path]) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for i, f in enumerate(files):
        store.put_file(f"bench/{i:03d}.pdf", f, metadata={"case-id": "bench"}, content_type="application/pdf")
    return time.perf_counter() - started


def bench_upload(work: Path, n: int = 20) -> None:
    """(a) 20 PDF-sized objects (60 KB–1 MB) to SeaweedFS S3 and to the local folder."""
    rng = random.Random(7)
    files = []
    for i in range(n):
        f = work / f"doc{i:03d}.pdf"
        f.write_bytes(b"%PDF-1.7\n" + os.urandom(rng.randint(60_000, 1_000_000)) + b"\n%%EOF\n")
        files.append(f)
    total_mb = sum(f.stat().st_size for f in files) / 1e6
    server = SeaweedServer(data_dir=work / "seaweedfs")
    server.start()
    try:
        s3 = S3Store(endpoint=server.endpoint, access_key=server.access_key, secret_key=server.secret_key,
                     bucket=f"bench-{secrets.token_hex(4)}")
        s3.ensure_bucket()
        local = LocalStore(work / "objects")
        _upload(local, files[:2]), _upload(s3, files[:2])  # warm-up (connections, folders)
        t_local = min(_upload(local, files) for _ in range(3))
        t_s3 = min(_upload(s3, files) for _ in range(3))
    finally:
        server.stop()
    print(f"(a) upload {n} objects, {total_mb:.1f} MB (verified put_file, best of 3)")
    print(f"    local folder (baseline): {total_mb / t_local:8.1f} MB/s  ({t_local * 1000:.0f} ms)")
    print(f"    SeaweedFS S3           : {total_mb / t_s3:8.1f} MB/s  ({t_s3 * 1000:.0f} ms)")
    print(f"    ratio S3 / local       : {t_local / t_s3:8.2f}x throughput")


def _pages(total: int) -> list[list[str]]:
    lines = [ln.strip() for f in sorted(SEED.glob("*.txt")) for ln in f.read_text(encoding="utf-8").splitlines()
             if len(ln.strip()) > 20]
    rng = random.Random(11)
    docs, per_doc = [], 10
    for _ in range(total // per_doc):
        docs.append(["\n".join(rng.sample(lines, k=min(len(lines), 12))) for _ in range(per_doc)])
    return docs


def _fill(catalog: Catalog, docs: list[list[str]]) -> float:
    started = time.perf_counter()
    for i, texts in enumerate(docs):
        case = f"000.00.{i % 90 + 10:02d}.H56-2002{i % 28 + 1:02d}-{i % 9999 + 1:04d}"
        catalog.record_document(DocumentRecord(
            case_id=case, document_id=f"doc{i:05d}", source_sha256=f"{i:064d}", source_name=f"scan{i}.pdf",
            created_at=f"2020-02-{i % 28 + 1:02d}T08:00:00+00:00", page_count=len(texts),
            pages=[PageText(number=n + 1, text=t, confidence=90.0) for n, t in enumerate(texts)]))
    return time.perf_counter() - started


def _latencies(catalog: Catalog, rounds: int) -> list[float]:
    for q in QUERIES:  # warm caches
        catalog.search(q)
    out = []
    for _ in range(rounds):
        for q in QUERIES:
            started = time.perf_counter()
            catalog.search(q, limit=20)
            out.append((time.perf_counter() - started) * 1000)
    return out


def bench_search(work: Path, pages: int = 10_000, rounds: int = 20) -> None:
    """(b) search latency over 10,000 catalogued pages: SQLite (baseline) and PostgreSQL."""
    docs = _pages(pages)
    results = {}
    sqlite_cat = Catalog(f"sqlite:///{work / 'bench.sqlite3'}")
    sqlite_cat.migrate()
    fill_sqlite = _fill(sqlite_cat, docs)
    results["SQLite FTS5"] = _latencies(sqlite_cat, rounds)
    sqlite_cat.close()

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"sohoa_bench_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\''))
    try:
        pg = Catalog(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}")
        pg.migrate()
        fill_pg = _fill(pg, docs)
        with pg.engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        results["PostgreSQL tsvector"] = _latencies(pg, rounds)
        pg.close()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    n_pages = sum(len(d) for d in docs)
    print(f"(b) search over {n_pages} pages, {len(QUERIES)} queries x {rounds} rounds, limit 20")
    print(f"    catalogue fill: SQLite {fill_sqlite:.1f} s, PostgreSQL {fill_pg:.1f} s")
    base = statistics.median(results["SQLite FTS5"])
    for label, lat in results.items():
        med = statistics.median(lat)
        p95 = statistics.quantiles(lat, n=20)[-1]
        print(f"    {label:20s}: median {med:7.2f} ms  p95 {p95:7.2f} ms  median ratio vs SQLite {med / base:5.2f}x")


def main() -> None:
    """Run both benchmarks in a temporary folder."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sohoa-bench-") as tmp:
        work = Path(tmp)
        bench_upload(work)
        bench_search(work, pages=args.pages, rounds=args.rounds)


if __name__ == "__main__":
    main()
