"""Many writers of one case at once (issue 10 §1): separate processes, each with its own store client
and catalog connection, store a different document into the same case at the same moment; nothing
may be lost from the case's listing, its manifest.json, the catalog, or a catalog rebuilt by reindex.

Processes (not threads of one Archive) because the old in-process lock hid the race inside one
process: what lost documents in production was two `sohoa scan` processes on one case.
"""
from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

import pytest

from storage.archive import Archive
from storage.catalog import Catalog
from storage.objectstore import manifest_key

CASE = "000.00.14.H56-200203-0118"
WRITERS = 12
ROUNDS = 3


def _open_store(spec: dict):
    if spec["kind"] == "local":
        from storage.local import LocalStore

        return LocalStore(Path(spec["root"]))
    from storage.s3 import S3Store

    return S3Store(endpoint=spec["endpoint"], access_key=spec["access_key"], secret_key=spec["secret_key"],
                   bucket=spec["bucket"])


def _writer(spec: dict, catalog_url: str, workdir: str, round_no: int, n: int, barrier, results) -> None:
    """One `sohoa scan` worth of storage work: original, searchable PDF, OCR words, manifest, catalog."""
    from models import DocumentRecord

    try:
        store = _open_store(spec)
        catalog = Catalog(catalog_url)
        archive = Archive(store, catalog)
        doc = f"r{round_no}-doc{n:02d}"
        src = Path(workdir) / f"{doc}.tif"
        src.write_bytes(b"II*\x00" + f"{doc} ".encode() * 500)
        pdf = Path(workdir) / f"{doc}.pdf"
        pdf.write_bytes(b"%PDF-1.7\n" + doc.encode() + b"\n%%EOF")
        ocr = json.dumps({"pages": [{"number": 1, "text": f"Giấy tờ số {n} vòng {round_no}",
                                     "ocr": {"words": [["Giấy", 1, 1, 1, 1, 90.0]]}}]}, ensure_ascii=False)
        barrier.wait(timeout=60)  # everyone stores at the same moment
        original = archive.store_original(case_id=CASE, document_id=doc, source_path=src, source_name=src.name,
                                          ext="tif")
        searchable = archive.store_derived(case_id=CASE, document_id=doc, role="searchable_pdf", path=pdf,
                                           content_type="application/pdf", source_sha256=original.sha256)
        archive.record(DocumentRecord(case_id=CASE, document_id=doc, source_sha256=original.sha256,
                                      source_name=src.name, created_at=f"2020-02-03T08:00:{n:02d}+00:00",
                                      page_count=1, keys={"source": original.key,
                                                          "searchable_pdf": searchable.key}),
                       ocr_json=ocr.encode())
        catalog.close()
        results.put((doc, "ok"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        results.put((f"r{round_no}-doc{n:02d}", f"{type(exc).__name__}: {exc}"))


def _run_rounds(spec: dict, catalog_url: str, tmp_path: Path) -> list[tuple[int, int, int]]:
    """ROUNDS × WRITERS concurrent writers; returns (round, documents written, documents lost) per round."""
    ctx = mp.get_context("fork")
    catalog = Catalog(catalog_url)
    catalog.migrate()
    archive = Archive(_open_store(spec), catalog)
    outcome = []
    expected: set[str] = set()
    for round_no in range(ROUNDS):
        barrier, results = ctx.Barrier(WRITERS), ctx.Queue()
        procs = [ctx.Process(target=_writer, args=(spec, catalog_url, str(tmp_path), round_no, n, barrier, results))
                 for n in range(WRITERS)]
        for p in procs:
            p.start()
        reports = dict(results.get(timeout=180) for _ in procs)
        for p in procs:
            p.join(timeout=60)
        assert all(v == "ok" for v in reports.values()), reports
        expected |= set(reports)
        listed = {d["document_id"] for d in archive.read_manifest(CASE)["documents"]}
        derived = {d["document_id"] for d in json.loads(archive.store.get_bytes(manifest_key(CASE)))["documents"]}
        catalogued = {r.document_id for r in catalog.documents_for_case(CASE)}
        outcome.append((round_no, WRITERS, len(expected - listed)))
        assert listed == expected, f"round {round_no}: the case lists no entry for {sorted(expected - listed)}"
        assert derived == expected, f"round {round_no}: manifest.json misses {sorted(expected - derived)}"
        assert catalogued == expected, f"round {round_no}: the catalog misses {sorted(expected - catalogued)}"
    assert archive.reindex() == len(expected) == ROUNDS * WRITERS
    assert {r.document_id for r in catalog.documents_for_case(CASE)} == expected
    assert archive.verify(CASE) == []
    catalog.close()
    return outcome


def test_twelve_concurrent_writers_of_one_case_lose_nothing_local(tmp_path: Path, sqlite_url: str) -> None:
    spec = {"kind": "local", "root": str(tmp_path / "objects")}
    outcome = _run_rounds(spec, sqlite_url, tmp_path)
    print(f"local store + SQLite: {ROUNDS} runs × {WRITERS} documents, lost {sum(o[2] for o in outcome)}")


def test_twelve_concurrent_writers_of_one_case_lose_nothing_s3(tmp_path: Path, s3_server, s3_store,
                                                                pg_url: str) -> None:
    spec = {"kind": "s3", "endpoint": s3_store.endpoint, "bucket": s3_store.bucket,
            "access_key": s3_server.access_key, "secret_key": s3_server.secret_key}
    outcome = _run_rounds(spec, pg_url, tmp_path)
    print(f"S3 (SeaweedFS) + PostgreSQL: {ROUNDS} runs × {WRITERS} documents, lost {sum(o[2] for o in outcome)}")


@pytest.mark.parametrize("garbage", [b"{not json", b'{"documents": [{"no": "id"}]}'])
def test_unreadable_entry_is_reported_and_the_others_still_listed(tmp_path: Path, local_store, garbage) -> None:
    from storage.objectstore import entry_key

    catalog = Catalog(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    catalog.migrate()
    archive = Archive(local_store, catalog)
    local_store.put_bytes(entry_key(CASE, "broken"), garbage, metadata={}, content_type="application/json")
    local_store.put_bytes(manifest_key(CASE), garbage, metadata={}, content_type="application/json")
    src = tmp_path / "a.tif"
    src.write_bytes(b"II*\x00" + b"a" * 100)
    from models import DocumentRecord

    o = archive.store_original(case_id=CASE, document_id="good", source_path=src, source_name="a.tif", ext="tif")
    archive.record(DocumentRecord(case_id=CASE, document_id="good", source_sha256=o.sha256, source_name="a.tif",
                                  created_at="2020-01-01T00:00:00+00:00", page_count=1, keys={"source": o.key}))
    assert [r.document_id for r in archive.manifest_records(CASE)] == ["good"]
    problems = archive.verify(CASE)
    assert {p.key for p in problems} == {entry_key(CASE, "broken"), manifest_key(CASE)}
    assert archive.reindex() == 1
    catalog.close()


def test_corrupt_manifest_is_reported_by_verify_and_show_and_the_others_carry_on(
        tmp_path: Path, monkeypatch, capsys) -> None:
    """A corrupt manifest.json used to crash `verify`, `verify CASE` and `show` (exit 1, traceback)."""
    from cli.main import main
    from flows.common import open_archive
    from models import DocumentRecord

    bad, good = "000.00.14.H56-200203-0119", CASE
    monkeypatch.setenv("SOHOA_DATA_DIR", str(tmp_path / "data"))
    for var in ("SOHOA_S3_ENDPOINT", "SOHOA_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    archive = open_archive()
    src = tmp_path / "a.tif"
    src.write_bytes(b"II*\x00" + b"a" * 100)
    o = archive.store_original(case_id=good, document_id="good", source_path=src, source_name="a.tif", ext="tif")
    archive.record(DocumentRecord(case_id=good, document_id="good", source_sha256=o.sha256, source_name="a.tif",
                                  created_at="2020-01-01T00:00:00+00:00", page_count=1, keys={"source": o.key}))
    archive.store.put_bytes(manifest_key(bad), b'{"documents": [', metadata={}, content_type="application/json")
    capsys.readouterr()
    assert main(["verify"]) == 5
    out = capsys.readouterr()
    assert bad in out.out and "manifest.json" in out.out and "Traceback" not in out.err
    assert main(["verify", bad]) == 5
    assert main(["verify", good]) == 0
    capsys.readouterr()
    assert main(["show", bad]) == 7
    assert "manifest.json" in capsys.readouterr().err
    assert main(["show", good]) == 0
    assert "good" in capsys.readouterr().out
