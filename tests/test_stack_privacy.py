"""One case never receives another case's pages: a stack split by cover sheets, and the repair of old stores.

Issue 9 item 1. The stack is a small raster PDF (tests/test_desk.py helpers): every page image is
unique, so a page is recognised in any PDF by its image bytes, and by its marker word in the OCR text.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pikepdf
import pytest

from cli.main import main
from flows.common import open_archive
from models import DocumentRecord
from pipeline.document import document_id_for
from pipeline.reader import sha256_of
from tests.test_desk import sheet, text_page, write_stack

CASE_A = "000.17.22.H56-200203-0118"
CASE_B = "000.00.14.H56-200203-0119"


def page_images(path: Path) -> list[str]:
    """SHA-256 of each page's (first) image stream as stored, page by page."""
    with pikepdf.open(path) as pdf:
        out = []
        for page in pdf.pages:
            images = list(page.get_images().values())
            out.append(hashlib.sha256(images[0].read_raw_bytes()).hexdigest() if images else "")
        return out


@pytest.fixture
def two_case_stack(tmp_path) -> Path:
    """Sheet A, two pages of A (ALPHA, BRAVO), sheet B, one page of B (CHARLIE)."""
    return write_stack(tmp_path / "xap.pdf", [sheet(CASE_A), text_page("ALPHA"), text_page("BRAVO"),
                                              sheet(CASE_B), text_page("CHARLIE")])


def _everything_reachable_from(case: str, out: Path, capsys) -> tuple[list[Path], str]:
    """What a handler of ``case`` can get: files of ``get``, and the text of ``show``/``link`` --json."""
    assert main(["get", case, "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["show", case, "--json"]) == 0
    shown = capsys.readouterr().out
    assert main(["link", case, "--json"]) == 0
    linked = capsys.readouterr().out
    return sorted(out.iterdir()), shown + linked


def test_nothing_of_case_a_is_reachable_from_case_b(prefect_harness, data_dir, two_case_stack, tmp_path, capsys):
    stack_sha = sha256_of(two_case_stack)
    stack_images = page_images(two_case_stack)  # [sheet A, ALPHA, BRAVO, sheet B, CHARLIE]
    assert main(["scan", str(two_case_stack), "--json"]) == 0
    reports = json.loads(capsys.readouterr().out)
    assert [(r["case_id"], r["status"], r["stack_pages"]) for r in reports] == [
        (CASE_A, "stored", [2, 3]), (CASE_B, "stored", [5])]

    files, listed = _everything_reachable_from(CASE_B, tmp_path / "b", capsys)
    archive = open_archive()
    a_docs = archive.manifest_records(CASE_A)
    for f in files:
        data = f.read_bytes()
        assert hashlib.sha256(data).hexdigest() != stack_sha, f"{f.name} is the whole stack"
        assert b"ALPHA" not in data and b"BRAVO" not in data
        if f.suffix == ".pdf":
            images = page_images(f)
            assert len(images) == 1
            assert not set(images) & set(stack_images[:4]), f"{f.name} holds a page that is not case B's"
    original = next(f for f in files if ".original" in f.name)
    assert page_images(original) == [stack_images[4]]  # lossless: the very image stream of the stack's page 5
    # No key, id or checksum of case A (nor the stack object) is named to case B.
    for doc in a_docs:
        assert doc.document_id not in listed and doc.source_sha256 not in listed
        assert all(key not in listed for key in doc.keys.values())
    assert "stacks/" not in listed
    # The catalog: case B's pages never hold case A's text; a search within B finds nothing of A.
    b_pages = [p.text for d in archive.catalog.documents_for_case(CASE_B, with_pages=True) for p in d.pages]
    assert any("CHARLIE" in t for t in b_pages) and not any("ALPHA" in t or "BRAVO" in t for t in b_pages)
    assert {h.case_id for h in archive.catalog.search("ALPHA")} == {CASE_A}
    assert archive.catalog.search("ALPHA", case_prefix=CASE_B) == []

    # Case A's original holds exactly its two pages; the whole stack is kept once, apart from the cases.
    [a_doc] = a_docs
    a_original = tmp_path / "a-original.pdf"
    archive.store.get_file(a_doc.keys["source"], a_original)
    assert page_images(a_original) == stack_images[1:3]
    assert a_doc.stack_sha256 == stack_sha and a_doc.stack_pages == [2, 3]
    [b_doc] = archive.manifest_records(CASE_B)
    assert b_doc.stack_sha256 == stack_sha and b_doc.stack_pages == [5]
    [b_row] = archive.catalog.documents_for_case(CASE_B)
    assert (b_row.stack_sha256, b_row.stack_pages) == (stack_sha, [5, 5])
    assert archive.store.stat(f"stacks/{stack_sha}/source.pdf").sha256 == stack_sha
    record = archive.read_stack(stack_sha)
    assert [(s["case_id"], s["pages"]) for s in record["segments"]] == [(CASE_A, [2, 3]), (CASE_B, [5])]
    assert not any(k.startswith("stacks/") for c in (CASE_A, CASE_B) for k in archive.store.list(f"cases/{c}/"))

    # The same stack again: each dossier is recognised, nothing is stored twice.
    assert main(["scan", str(two_case_stack), "--json"]) == 0
    assert [r["status"] for r in json.loads(capsys.readouterr().out)] == ["already-stored"] * 2


def _write_old_layout(archive, stack: Path, tmp_path: Path) -> dict[str, DocumentRecord]:
    """What the code before this fix wrote: the whole stack as the original of each case it held."""
    sha = sha256_of(stack)
    written = {}
    for case, pages, marker in ((CASE_A, [2, 3], "ALPHA BRAVO"), (CASE_B, [5], "CHARLIE")):
        doc = document_id_for(sha, pages)
        original = archive.store_original(case_id=case, document_id=doc, source_path=stack, source_name=stack.name,
                                          ext="pdf")
        pdf = tmp_path / f"{doc}.pdf"
        with pikepdf.open(stack) as src, pikepdf.new() as out:
            out.pages.extend(src.pages[p - 1] for p in pages)
            out.save(pdf)
        searchable = archive.store_derived(case_id=case, document_id=doc, role="searchable_pdf", path=pdf,
                                           content_type="application/pdf", source_sha256=sha)
        ocr = json.dumps({"document_id": doc, "case_id": case, "source_sha256": sha, "dropped_blank_pages": [],
                          "pages": [{"number": p, "text": f"{marker} trang {p}", "ocr": None} for p in pages]})
        rec = DocumentRecord(case_id=case, document_id=doc, source_sha256=sha, source_name=stack.name,
                             created_at="2026-11-20T08:00:00+00:00", page_count=len(pages),
                             keys={"source": original.key, "searchable_pdf": searchable.key})
        written[case] = archive.record(rec, ocr_json=ocr.encode())
    return written


def test_repair_stacks_rewrites_only_the_affected_originals(prefect_harness, data_dir, two_case_stack, tmp_path,
                                                            capsys, sample_dossier):
    archive = open_archive()
    stack_sha = sha256_of(two_case_stack)
    stack_images = page_images(two_case_stack)
    old = _write_old_layout(archive, two_case_stack, tmp_path)
    # A file ingested whole in another case is not a stack and must not be touched.
    whole_case = "000.00.01.H56-181010-0001"
    tif = sample_dossier[0]
    whole = archive.store_original(case_id=whole_case, document_id=document_id_for(sha256_of(tif)),
                                   source_path=tif, source_name=tif.name, ext="tif")
    archive.record(DocumentRecord(case_id=whole_case, document_id=document_id_for(sha256_of(tif)),
                                  source_sha256=whole.sha256, source_name=tif.name,
                                  created_at="2026-11-20T08:00:00+00:00", page_count=3, keys={"source": whole.key}))

    assert main(["repair-stacks", "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert dry.count("sẽ chỉ giữ trang") == 2 and "2–3" in dry and CASE_B in dry
    assert archive.store.stat(old[CASE_B].keys["source"]).sha256 == stack_sha  # a dry run changes nothing

    assert main(["repair-stacks"]) == 0
    out = capsys.readouterr().out
    print(out)  # the repaired cases, for the report (pytest -s)
    assert f"{CASE_A} · {old[CASE_A].document_id}" in out and f"{CASE_B} · {old[CASE_B].document_id}" in out
    assert out.count("✓") == 2 and whole_case not in out

    for case, own in ((CASE_A, stack_images[1:3]), (CASE_B, [stack_images[4]])):
        key = old[case].keys["source"]
        now = tmp_path / f"{case}.pdf"
        archive.store.get_file(key, now)
        assert page_images(now) == own
        [kept] = archive.store.versions(key)  # the stack's bytes stay as the older version
        assert sha256_of(kept) == stack_sha
        [rec] = archive.manifest_records(case)
        assert rec.document_id == old[case].document_id and rec.source_sha256 == sha256_of(now)
        assert rec.stack_sha256 == stack_sha
        [row] = archive.catalog.documents_for_case(case, with_pages=True)
        assert row.source_sha256 == sha256_of(now) and row.stack_sha256 == stack_sha and row.pages
    assert archive.manifest_records(CASE_A)[0].stack_pages == [2, 3]
    assert archive.store.stat(whole.key).sha256 == whole.sha256 and archive.store.versions(whole.key) == []
    assert archive.store.stat(f"stacks/{stack_sha}/source.pdf").sha256 == stack_sha
    assert main(["verify"]) == 0  # every checksum in the manifests matches the rewritten objects
    capsys.readouterr()
    assert main(["repair-stacks"]) == 0
    assert "nothing to repair" in capsys.readouterr().out


def test_repair_on_s3_keeps_the_stack_as_the_older_object_version(s3_store, tmp_path, two_case_stack):
    """The same repair on a real S3 server (SeaweedFS, versioning on): the old bytes stay a version back."""
    from flows.repair import repair_stacks
    from storage.archive import Archive
    from storage.catalog import Catalog

    catalog = Catalog(f"sqlite:///{tmp_path / 'catalog.sqlite3'}")
    catalog.migrate()
    archive = Archive(s3_store, catalog)
    stack_sha = sha256_of(two_case_stack)
    stack_images = page_images(two_case_stack)
    old = _write_old_layout(archive, two_case_stack, tmp_path)
    repairs = repair_stacks(archive, work_root=tmp_path / "work")
    assert sorted((r.case_id, r.status, r.pages) for r in repairs) == [
        (CASE_B, "repaired", [5]), (CASE_A, "repaired", [2, 3])]
    for case, own in ((CASE_A, stack_images[1:3]), (CASE_B, [stack_images[4]])):
        key = old[case].keys["source"]
        now = tmp_path / f"s3-{case}.pdf"
        s3_store.get_file(key, now)
        assert page_images(now) == own
        assert len(s3_store.versions(key)) == 2  # the whole stack is the older version, not lost
        assert archive.manifest_records(case)[0].stack_sha256 == stack_sha
    assert s3_store.stat(f"stacks/{stack_sha}/source.pdf").sha256 == stack_sha
    assert repair_stacks(archive, work_root=tmp_path / "work") == []
