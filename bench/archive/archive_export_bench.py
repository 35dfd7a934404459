"""Transfer-package export against plainly reading the same bytes from the store (issue 22).

    .venv/bin/python bench/archive/archive_export_bench.py [--records 20] [--pages 5] [--work DIR]

Fills a local folder store and a SQLite catalog with N records of one document of P pages each
(synthetic bytes of a scan's and a searchable PDF's typical size, and an ocr.json with text), then
runs two phases, each in its own process, one after the other:

- ``read``: for every record, what export fetches: its entries, the original and the searchable PDF
  downloaded to a temporary file (then removed) and its ocr.json read;
- ``export``: ``flows.transfer.export_records`` into a fresh folder (BagIt + METS + PREMIS, SHA-256).

Reported: wall and CPU seconds, peak RSS and the peak's growth over the RSS after imports (what the
work itself held), and the ratios export/read. The machine is shared: only the ratios mean much.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
UNIT = "000.00.14.H56"
SCAN_KB, PDF_KB = 150, 60  # per page


def _hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _open(work: Path):  # type: ignore[no-untyped-def]
    from storage.archive import Archive
    from storage.catalog import Catalog
    from storage.local import LocalStore

    catalog = Catalog(f"sqlite:///{work / 'catalog.sqlite3'}")
    catalog.migrate()
    return Archive(LocalStore(work / "objects"), catalog)


def populate(work: Path, records: int, pages: int) -> None:
    from models import DocumentRecord

    archive = _open(work)
    tmp = work / "tmp"
    tmp.mkdir(exist_ok=True)
    for n in range(records):
        case = f"{UNIT}-200203-{n + 1:04d}"
        doc = f"d{n:06d}"
        src, pdf = tmp / "s.tif", tmp / "s.pdf"
        src.write_bytes(os.urandom(SCAN_KB * 1024 * pages))
        pdf.write_bytes(b"%PDF-1.7\n" + os.urandom(PDF_KB * 1024 * pages) + b"\n%%EOF")
        original = archive.store_original(case_id=case, document_id=doc, source_path=src, source_name="scan.tif",
                                          ext="tif", operator="bench")
        searchable = archive.store_derived(case_id=case, document_id=doc, role="searchable_pdf", path=pdf,
                                           content_type="application/pdf", source_sha256=original.sha256)
        text = "Quyết định về việc cấp giấy phép xây dựng cho hộ gia đình " * 40
        ocr = {"document_id": doc, "case_id": case,
               "pages": [{"number": p + 1, "ocr": None, "text": text} for p in range(pages)]}
        archive.record(DocumentRecord(case_id=case, document_id=doc, source_sha256=original.sha256,
                                      source_name="scan.tif", created_at="2020-02-03T08:00:00+00:00",
                                      page_count=pages, kind="Quyết định", operator="bench",
                                      keys={"source": original.key, "searchable_pdf": searchable.key}),
                       ocr_json=json.dumps(ocr, ensure_ascii=False).encode())
    shutil.rmtree(tmp)


def phase(work: Path, name: str) -> dict[str, float]:
    import pipeline.document
    import pipeline.sign  # noqa: F401
    from flows.transfer import export_records, open_book
    from storage.manifest import pages_from_ocr_json

    archive = _open(work)
    book = open_book(archive, work)
    cases = archive.catalog.case_ids()
    out = work / "packages"
    shutil.rmtree(out, ignore_errors=True)
    base_kb = _hwm_kb()
    t0, c0 = time.perf_counter(), time.process_time()
    if name == "read":
        scratch = Path(tempfile.mkdtemp(dir=work))
        for case in cases:
            for entry in archive.read_case(case).documents:
                for role in ("source", "searchable_pdf"):
                    dest = scratch / "f.bin"
                    archive.store.get_file(entry["keys"][role], dest)
                    dest.unlink()
                pages_from_ocr_json(archive.store.get_bytes(entry["keys"]["ocr_json"]))
        shutil.rmtree(scratch)
    else:
        export_records(archive, book, cases, out, actor="bench")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak / 1024, "growth_mb": (_hwm_kb() - base_kb) / 1024,
            "records": len(cases)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=20)
    ap.add_argument("--pages", type=int, default=5)
    ap.add_argument("--work", type=Path)
    ap.add_argument("--phase", choices=["populate", "read", "export"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.phase:
        if a.phase == "populate":
            populate(a.work, a.records, a.pages)
        else:
            print(json.dumps(phase(a.work, a.phase)))
        return 0
    work = a.work or Path(tempfile.mkdtemp(prefix="sohoa-export-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SOHOA_DATA_DIR": str(work)}
    me = [sys.executable, str(Path(__file__).resolve()), "--work", str(work)]
    subprocess.run([*me, "--phase", "populate", "--records", str(a.records), "--pages", str(a.pages)], check=True,
                   env=env)
    results = {p: json.loads(subprocess.run([*me, "--phase", p], check=True, env=env, capture_output=True,
                                            text=True).stdout.strip().splitlines()[-1]) for p in ("read", "export")}
    mb = sum(f.stat().st_size for f in (work / "objects").rglob("*") if f.is_file()) / 2**20
    print(f"{a.records} records x {a.pages} pages, {mb:.0f} MB in the store")
    print(f"{'phase':8} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} {'growth MB':>10}")
    for p, r in results.items():
        print(f"{p:8} {r['wall_s']:8.2f} {r['cpu_s']:8.2f} {r['peak_rss_mb']:8.1f} {r['growth_mb']:10.1f}")
    r, e = results["read"], results["export"]
    print(f"export/read: wall {e['wall_s'] / r['wall_s']:.2f}x, cpu {e['cpu_s'] / r['cpu_s']:.2f}x, "
          f"peak RSS {e['peak_rss_mb'] / r['peak_rss_mb']:.2f}x, growth {e['growth_mb']:.1f} vs {r['growth_mb']:.1f} MB")
    if not a.work:
        shutil.rmtree(work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
