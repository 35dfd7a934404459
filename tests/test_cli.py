"""The `sohoa` command as an operator meets it: reports, one-sentence errors, documented exit codes."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cli.main import main

CASE = "000.00.01.H56-181010-0001"
SOHOA = [sys.executable, "-m", "cli"]


def run(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = os.environ | (env_extra or {})
    return subprocess.run([*SOHOA, *args], capture_output=True, text=True, env=env, timeout=300)


def test_pdf_writes_searchable_pdf_and_sidecar(tmp_path, sample_dossier):
    out, side = tmp_path / "out.pdf", tmp_path / "out.txt"
    res = run("pdf", str(sample_dossier[1]), str(sample_dossier[3]), "-o", str(out), "--sidecar", str(side),
              "--jobs", "2")
    assert res.returncode == 0, res.stderr
    assert "2 trang" in res.stdout
    text = side.read_text("utf-8")
    assert text.count("\f") == 1
    assert "Tuyên Quang" in text and "GIẤY TIẾP NHẬN HỒ SƠ" in text
    assert subprocess.run(["pdftotext", str(out), "-"], capture_output=True, text=True).stdout.count("Tuyên Quang")


@pytest.mark.parametrize("name, content, code, words", [
    ("empty.pdf", b"", 3, "0 byte"),
    ("letter.pdf", "Kính gửi".encode(), 3, "không phải PDF"),
    ("scan.xyz", b"\x00\x01garbage", 3, "không phải PDF"),
    ("cut.jpg", None, 3, "bị hỏng"),
])
def test_bad_input_one_sentence_documented_exit_code_no_traceback(tmp_path, sample_dossier, name, content,
                                                                  code, words):
    src = tmp_path / name
    if content is None:
        data = sample_dossier[1].read_bytes()
        content = data[: len(data) // 4]
    src.write_bytes(content)
    res = run("pdf", str(src), "-o", str(tmp_path / "o.pdf"))
    assert res.returncode == code
    assert "Traceback" not in res.stderr
    assert words in res.stderr and name in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o.pdf").exists()


def test_malformed_case_id_shows_the_expected_shape(tmp_path, sample_dossier):
    res = run("scan", str(sample_dossier[1]), "--case", "000.00.01-H56-18-1")
    assert res.returncode == 2
    assert "000.00.01.H56-181010-0001" in res.stderr and "Traceback" not in res.stderr


def test_check_gives_verdicts_and_exit_4_on_a_blurred_page(tmp_path, sample_dossier):
    import cv2

    img = cv2.imread(str(sample_dossier[1]), cv2.IMREAD_GRAYSCALE)
    blurred = tmp_path / "mo.png"
    cv2.imwrite(str(blurred), cv2.GaussianBlur(img, (0, 0), 6))
    good = run("check", str(sample_dossier[1]))
    assert good.returncode == 0 and "trang 1: đạt" in good.stdout
    bad = run("check", str(blurred), "--json")
    assert bad.returncode == 4
    [page] = json.loads(bad.stdout)
    assert any(i["code"] == "blurred" for i in page["issues"])


def test_scan_show_get_in_process(prefect_harness, data_dir, sample_dossier, tmp_path, capsys):
    assert main(["scan", str(sample_dossier[3]), "--case", CASE, "--kind", "Giấy tiếp nhận", "--operator", "Lan",
                 "--json"]) == 0
    [report] = json.loads(capsys.readouterr().out)
    assert report["status"] == "stored" and report["kind"] == "Giấy tiếp nhận"
    assert main(["show", CASE]) == 0
    shown = capsys.readouterr().out
    assert report["document_id"] in shown and "Lan" in shown
    assert main(["get", CASE, "-o", str(tmp_path / "out")]) == 0
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert any(f.endswith(".pdf") for f in files) and any(".original.jpg" in f for f in files)
    original = next(p for p in (tmp_path / "out").iterdir() if ".original." in p.name)
    assert original.read_bytes() == sample_dossier[3].read_bytes()  # never modified


def test_show_unknown_case_exit_7(prefect_harness, data_dir, capsys):
    assert main(["show", "000.00.01.H56-181010-0002"]) == 7
