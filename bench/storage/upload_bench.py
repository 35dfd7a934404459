"""Upload benchmark: a 20-page dossier's real searchable PDFs stored through ``Archive`` on SeaweedFS S3,
with the local-folder backend as the baseline in the same run.

Pages come from /work/shared/bench/synth_scans.py (office profile, 300 dpi); each page is one
document (a dossier's components), made into a searchable PDF/A by pipeline.document.process_document
exactly as ``sohoa pdf`` does. The PDFs are kept in --work, so a second run skips the OCR.

What is timed, per backend (best of --rounds, each round into a fresh bucket / folder):
  (1) put     the searchable PDFs alone, ``store.put_file`` (hash while sending, verify after)
  (2) archive what the intake flow does per document: original, PDF, OCR words, manifest, catalog
              (SQLite catalog on both sides, so the difference is the object store)

Run: ``.venv/bin/python bench/storage/upload_bench.py [--work DIR] [--pages 20] [--rounds 3]``
"""
from __future__ import annotations

import os

import argparse
import hashlib
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models import DocumentRecord  # noqa: E402
from storage.archive import Archive  # noqa: E402
from storage.catalog import Catalog  # noqa: E402
from storage.local import LocalStore  # noqa: E402
from storage.s3 import S3Store  # noqa: E402
from tests.servers import SeaweedServer  # noqa: E402

SHARED = Path(os.environ.get("SOHOA_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the repo

SYNTH = SHARED / "bench" / "synth_scans.py"
SEED = SHARED / "seed"
CASE = "000.00.14.H56-200203-0118"


def make_pdfs(work: Path, pages: int, jobs: int) -> list[tuple[Path, Path, Path]]:
    """(scan, searchable PDF, ocr.json) per page; made once and reused from ``work``."""
    from pipeline.document import process_document

    # The seed text gives ~8 pages; more pages are the same text degraded with another seed.
    text = sorted(SEED.glob("*.txt"))[0]
    scan_files: list[Path] = []
    seed = 61
    while len(scan_files) < pages:
        batch = work / "scans" / f"seed{seed}"
        if not any(batch.glob("pages/*.jpg")):
            subprocess.run([sys.executable, str(SYNTH), str(text), str(batch), "--pages", str(pages),
                            "--seed", str(seed), "--profile", "office", "--format", "jpg"], check=True)
        found = sorted(batch.glob("pages/*.jpg"))
        if not found:
            raise SystemExit(f"{SYNTH} made no pages from {text}")
        scan_files += found[: pages - len(scan_files)]
        seed += 1
    out = []
    started = time.perf_counter()
    made = 0
    for scan in scan_files:
        doc_dir = work / "docs" / f"{scan.parent.parent.name}-{scan.stem}"
        pdf, ocr = doc_dir / "searchable.pdf", doc_dir / "ocr.json"
        if not (pdf.is_file() and ocr.is_file()):
            process_document([scan], workdir=doc_dir, case_id=CASE, jobs=jobs)
            made += 1
        out.append((scan, pdf, ocr))
    if made:
        print(f"OCR'd {made} pages into searchable PDFs in {time.perf_counter() - started:.0f} s")
    return out


def put_pdfs(store, docs) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for i, (_, pdf, _) in enumerate(docs):
        store.put_file(f"bench/{i:03d}/searchable.pdf", pdf, metadata={"case-id": CASE},
                       content_type="application/pdf")
    return time.perf_counter() - started


def archive_dossier(archive: Archive, docs) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    for scan, pdf, ocr in docs:
        sha = hashlib.sha256(scan.read_bytes()).hexdigest()
        doc_id = sha[:32]
        original = archive.store_original(case_id=CASE, document_id=doc_id, source_path=scan,
                                          source_name=scan.name, ext="jpg")
        searchable = archive.store_derived(case_id=CASE, document_id=doc_id, role="searchable_pdf", path=pdf,
                                           content_type="application/pdf", source_sha256=sha)
        archive.record(DocumentRecord(case_id=CASE, document_id=doc_id, source_sha256=sha, source_name=scan.name,
                                      created_at="2020-02-03T08:00:00+00:00", page_count=1,
                                      keys={"source": original.key, "searchable_pdf": searchable.key}),
                       ocr_json=ocr.read_bytes())
    return time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "sohoa-upload-bench")
    ap.add_argument("--pages", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=1, help="OCR processes while making the PDFs (shared host: 1)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)

    docs = make_pdfs(args.work, args.pages, args.jobs)
    pdf_mb = sum(p.stat().st_size for _, p, _ in docs) / 1e6
    all_mb = sum(s.stat().st_size + p.stat().st_size + o.stat().st_size for s, p, o in docs) / 1e6
    print(f"{len(docs)} documents: PDFs {pdf_mb:.2f} MB; with originals and OCR words {all_mb:.2f} MB")

    with tempfile.TemporaryDirectory(prefix="sohoa-upload-bench-") as tmp:
        tmp_path = Path(tmp)
        server = SeaweedServer(data_dir=tmp_path / "seaweedfs")
        server.start()
        try:
            results: dict[str, dict[str, float]] = {"local folder": {}, "SeaweedFS S3": {}}

            def local_store(r: int):  # type: ignore[no-untyped-def]
                return LocalStore(tmp_path / f"objects-{r}")

            def s3_store(r: int):  # type: ignore[no-untyped-def]
                store = S3Store(endpoint=server.endpoint, access_key=server.access_key,
                                secret_key=server.secret_key, bucket=f"bench-{r}-{secrets.token_hex(3)}")
                store.ensure_bucket()
                return store

            for name, factory in (("local folder", local_store), ("SeaweedFS S3", s3_store)):
                put_pdfs(factory(99), docs[:2])  # warm-up: connections, folders, volume allocation
                results[name]["put"] = min(put_pdfs(factory(r), docs) for r in range(args.rounds))
                times = []
                for r in range(args.rounds):
                    catalog = Catalog(f"sqlite:///{tmp_path / f'cat-{name[:5]}-{r}.sqlite3'}")
                    catalog.migrate()
                    times.append(archive_dossier(Archive(factory(100 + r), catalog), docs))
                    catalog.close()
                results[name]["archive"] = min(times)
        finally:
            server.stop()

    print(f"\nbest of {args.rounds} rounds")
    print(f"{'':16s} {'(1) PDFs put_file':>24s}   {'(2) through Archive (per document)':>36s}")
    for name, r in results.items():
        print(f"{name:16s} {pdf_mb / r['put']:8.1f} MB/s {r['put'] * 1000:7.0f} ms   "
              f"{all_mb / r['archive']:8.1f} MB/s {r['archive'] * 1000:7.0f} ms "
              f"({r['archive'] * 1000 / len(docs):.0f} ms/doc)")
    local, s3 = results["local folder"], results["SeaweedFS S3"]
    print(f"{'S3 / local':16s} {local['put'] / s3['put']:8.2f}x throughput {'':9s}"
          f"{local['archive'] / s3['archive']:8.2f}x throughput")


if __name__ == "__main__":
    main()
