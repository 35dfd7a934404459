"""Failures that looked like success, or like the wrong failure (issue 9 item 4).

Each test drives the ``sohoa`` command as an operator or administrator would and checks what they
are told: healing on re-run and ``verify --repair``, a missing file called missing, ``check`` over
several files, honest links on the local store, ``show`` in both languages, ``demo`` twice.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cli.main import main
from flows.common import open_archive

CASE = "000.00.01.H56-181010-0001"  # the demo's case


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=os.environ,
                          timeout=300, cwd=cwd)


def test_demo_twice_says_already_stored_and_reruns_and_verify_repair_heal(prefect_harness, data_dir, capsys):
    assert main(["demo", "--jobs", "2"]) == 0
    first = capsys.readouterr().out
    assert main(["demo", "--jobs", "2"]) == 0
    second = capsys.readouterr().out
    assert "already stored" in second and "đã được lưu từ trước" in second
    conf = next(line for line in second.splitlines() if line.startswith("Độ tin cậy OCR"))
    assert conf.strip().endswith("%"), conf
    lines = second.split("Những dòng đầu:")[1].strip().splitlines()
    assert lines and lines == first.split("Những dòng đầu:")[1].strip().splitlines()

    archive = open_archive()
    [doc] = archive.manifest_records(CASE)
    # A crash between manifest and catalog: the document is stored but search cannot find it.
    archive.catalog.clear()
    assert archive.catalog.search("Tuyen Quang") == []
    assert main(["verify"]) == 5
    assert "not in the catalog" in capsys.readouterr().out
    assert main(["demo", "--jobs", "2"]) == 0  # the re-run puts it back
    capsys.readouterr()
    assert {h.document_id for h in archive.catalog.search("Tuyen Quang")} == {doc.document_id}

    # An altered derived object: the re-run rebuilds it from the original.
    pdf = data_dir / "objects" / doc.keys["searchable_pdf"]
    pdf.write_bytes(pdf.read_bytes() + b"% tampered\n")
    assert main(["verify"]) == 5
    capsys.readouterr()
    assert main(["demo", "--jobs", "2"]) == 0
    capsys.readouterr()
    assert main(["verify"]) == 0
    capsys.readouterr()

    # verify --repair heals an altered ocr.json and a lost catalog row without the scan at hand.
    ocr = data_dir / "objects" / doc.keys["ocr_json"]
    ocr.write_bytes(ocr.read_bytes().replace(b"Tuy", b"Tux"))
    archive.catalog.clear()
    assert main(["verify", "--json"]) == 5
    report = json.loads(capsys.readouterr().out)
    assert report["problems"][0]["key"] == doc.keys["ocr_json"] and report["uncatalogued"]
    assert main(["verify", "--repair"]) == 0
    out = capsys.readouterr().out
    assert "✓" in out and "rebuilt ocr.json" in out
    assert main(["verify"]) == 0
    assert {h.document_id for h in archive.catalog.search("Tuyen Quang")} == {doc.document_id}


def test_a_missing_file_is_called_missing(tmp_path):
    for command in (["check"], ["pdf", "-o", str(tmp_path / "o.pdf")]):
        res = run(*command, str(tmp_path / "khong-co.jpg"))
        assert res.returncode == 3, res.stderr + res.stdout
        said = res.stderr + res.stdout
        assert "does not exist" in said and "Không có tệp" in said and "khong-co.jpg" in said
        assert "save the scan in one of those formats" not in said and "Traceback" not in said


def test_check_checks_every_file_names_each_and_exits_with_the_worst(tmp_path, sample_dossier):
    good = sample_dossier[1]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(good.read_bytes()[:3000])
    pdf = tmp_path / "c.pdf"
    from PIL import Image

    Image.open(sample_dossier[2]).save(pdf, format="PDF", resolution=300.0)
    res = run("check", str(good), str(bad), str(pdf), "--jobs", "2")
    assert res.returncode == 3, res.stdout + res.stderr  # an unreadable file is the worst outcome here
    out = res.stdout
    assert f"{good.name} trang 1:" in out and "c.pdf trang 1:" in out
    assert "bad.jpg:" in out and "bị hỏng" in out
    assert not any(line.startswith("trang ") for line in out.splitlines())  # every page line names its file
    assert "Traceback" not in res.stderr
    as_json = run("check", "--json", str(good), str(bad), str(pdf))
    files = [Path(r["file"]).name for r in json.loads(as_json.stdout)]
    assert files == [good.name, "bad.jpg", "c.pdf"] and as_json.returncode == 3


def test_show_not_found_in_both_languages_and_link_on_the_local_store_promises_no_expiry(data_dir, tmp_path):
    res = run("show", "000.17.22.H56-200203-0118")
    assert res.returncode == 7
    assert "chưa có tài liệu" in res.stderr and "has no documents" in res.stderr
    # A case with a stored document on the local folder store.
    from models import DocumentRecord

    archive = open_archive()
    src = tmp_path / "a.pdf"
    src.write_bytes(b"%PDF-1.4\n%%EOF\n")
    stored = archive.store_derived(case_id=CASE, document_id="doc1", role="searchable_pdf", path=src,
                                   content_type="application/pdf", source_sha256="0" * 64)
    archive.record(DocumentRecord(case_id=CASE, document_id="doc1", source_sha256="0" * 64, source_name="a.pdf",
                                  created_at="2026-11-29T08:00:00+00:00", page_count=1,
                                  keys={"searchable_pdf": stored.key}))
    res = run("link", CASE, "--expires", "30m")
    assert res.returncode == 0, res.stderr
    assert "hiệu lực" not in res.stdout and "valid until" not in res.stdout
    assert "do not expire" in res.stdout and "file://" in res.stdout
    [link] = json.loads(run("link", CASE, "--json").stdout)
    assert link["expires_at"] is None and link["url"].startswith("file://")
