"""The backfill flow on this machine: real Prefect (test server), real files, real Tesseract."""
from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from flows.backfill import backfill
from flows.backfill_report import REPORT_FIELDS, Progress, read_rows
from flows.backfill_source import iter_source
from cli.main import main
from PIL import Image, ImageDraw, ImageFont

# ---- tiny real scan files: one page each, a few Vietnamese words, 200 dpi (shared with the distributed tests)
FONTS = ["/usr/share/fonts/truetype/liberation2/LiberationSerif-Regular.ttf",
         "/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf",
         "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"]


def _font(size: int):
    for f in FONTS:
        if Path(f).exists():
            return ImageFont.truetype(f, size)
    return ImageFont.load_default()


def make_page(path: Path, number: int, *, dpi: int = 200) -> Path:
    """A small page (A7-ish, ~3 × 2 inches) with a title line and a number, saved with its DPI."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("L", (int(3.0 * dpi), int(2.0 * dpi)), 255)
    draw = ImageDraw.Draw(im)
    font = _font(int(dpi * 14 / 72))
    draw.text((int(0.3 * dpi), int(0.4 * dpi)), "Quyết định cấp phép", font=font, fill=0)
    draw.text((int(0.3 * dpi), int(0.9 * dpi)), f"Số {number:04d}/QĐ-UBND", font=font, fill=0)
    fmt = {".png": "PNG", ".jpg": "JPEG", ".tif": "TIFF"}[path.suffix.lower()]
    im.save(path, fmt, dpi=(dpi, dpi))
    return path


CASES = ["000.00.14.H56-190312-0004", "000.17.22.H56-200203-0118", "000.00.01.H56-181010-0001"]


def make_tree(root: Path, *, per_case: int = 2, start: int = 1, cases: list[str] | None = None,
              no_case: int = 1) -> dict[str, str | None]:
    """A year/case folder tree; returns {path: case or None}."""
    out: dict[str, str | None] = {}
    n = start
    for case in cases or CASES:
        for _ in range(per_case):
            p = make_page(root / "2019" / case / f"trang-{n:03d}.png", n)
            out[str(p.resolve())] = case
            n += 1
    for _ in range(no_case):
        p = make_page(root / "2019" / "chua-ro-ho-so" / f"trang-{n:03d}.png", n)
        out[str(p.resolve())] = None
        n += 1
    return out


pytestmark = pytest.mark.usefixtures("prefect_harness")


def run(source: Path, report: Path, **kw) -> dict:
    from prefect.task_runners import ThreadPoolTaskRunner

    return backfill.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
        source=str(source), report=str(report), concurrency=2, progress=False, **kw)


def manifest_docs(data_dir: Path, case: str) -> list[dict]:
    path = data_dir / "objects" / "cases" / case / "manifest.json"
    return json.loads(path.read_text("utf-8"))["documents"] if path.exists() else []


def by_path(rows: list[dict]) -> dict[str, dict]:
    return {r["path"]: r for r in rows}


def test_tree_is_stored_under_folder_cases_and_rerun_skips(tmp_path, data_dir):
    expected = make_tree(tmp_path / "src", per_case=1)
    report = tmp_path / "report.csv"
    summary = run(tmp_path / "src", report)
    rows = read_rows(report)
    assert list(rows[0].keys()) == REPORT_FIELDS
    got = by_path(rows)
    assert set(got) == set(expected)
    for path, case in expected.items():
        row = got[path]
        if case is None:
            assert row["status"] == "no-case-id" and "case ID" in row["reason"]
        else:
            assert (row["status"], row["case_id"], row["pages"]) == ("stored", case, "1")
            assert row["document_id"] and row["worker"]
            [doc] = manifest_docs(data_dir, case)
            assert doc["document_id"] == row["document_id"]
    assert summary["counts"] == {"stored": 3, "skipped": 0, "failed": 0, "no-case-id": 1}
    # The catalog finds the text: the pages were really read.
    from flows.common import open_archive
    assert open_archive().catalog.search("quyet dinh")

    report2 = tmp_path / "report2.csv"
    summary2 = run(tmp_path / "src", report2)
    assert summary2["counts"] == {"stored": 0, "skipped": 3, "failed": 0, "no-case-id": 1}
    for r in read_rows(report2):
        if r["status"] == "skipped":
            assert r["document_id"] == got[r["path"]]["document_id"] and r["pages"] == "1"
    for case in CASES:
        assert len(manifest_docs(data_dir, case)) == 1  # no duplicates


def test_dry_run_counts_before_and_after(tmp_path, data_dir, capsys):
    make_tree(tmp_path / "src", per_case=1, no_case=2)
    (tmp_path / "src" / "2019" / CASES[0] / "hong.pdf").write_bytes(b"this is not a scan")
    listing = tmp_path / "dry.csv"
    assert main(["backfill", str(tmp_path / "src"), "--dry-run", "--report", str(listing)]) == 0
    out = capsys.readouterr().out
    assert "would ingest)" in out
    counts = Counter(r["status"] for r in read_rows(listing))
    assert counts == {"would-ingest": 3, "no-case-id": 2, "unusable": 1}
    assert not (data_dir / "objects" / "cases").exists()  # nothing processed or stored

    run(tmp_path / "src", tmp_path / "report.csv")
    main(["backfill", str(tmp_path / "src"), "--dry-run", "--report", str(listing)])
    counts = Counter(r["status"] for r in read_rows(listing))
    assert counts == {"skipped": 3, "no-case-id": 2, "unusable": 1}


def test_csv_source_with_kind_and_bad_case(tmp_path, data_dir):
    a = make_page(tmp_path / "scans" / "a.png", 101)
    b = make_page(tmp_path / "scans" / "b.jpg", 102)
    c = make_page(tmp_path / "scans" / "c.png", 103)
    listing = tmp_path / "list.csv"
    with open(listing, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "case_id", "kind"])
        w.writerow(["scans/a.png", CASES[0], "Đơn đề nghị"])
        w.writerow([str(b), " 000.00.14.h56-190312-0004 ", ""])  # normalised
        w.writerow(["scans/c.png", "000.00.14.H56-191332-0001", ""])  # month 13: not a date
    report = tmp_path / "report.csv"
    summary = run(listing, report, case_from="csv")
    got = by_path(read_rows(report))
    assert got[str(a.resolve())]["status"] == "stored"
    assert got[str(b.resolve())]["status"] == "stored" and got[str(b.resolve())]["case_id"] == CASES[0]
    assert got[str(c.resolve())]["status"] == "no-case-id"
    assert "line 4" in got[str(c.resolve())]["reason"] and "calendar date" in got[str(c.resolve())]["reason"]
    docs = manifest_docs(data_dir, CASES[0])
    assert {d.get("kind") for d in docs} == {"Đơn đề nghị", None}
    assert summary["counts"]["stored"] == 2


def test_corrupt_file_fails_with_reason_and_the_rest_is_stored(tmp_path, data_dir):
    make_tree(tmp_path / "src", per_case=1, no_case=0)
    bad = tmp_path / "src" / "2019" / CASES[1] / "cut-off.png"
    good = make_page(tmp_path / "whole.png", 999)
    bad.write_bytes(good.read_bytes()[:200])  # a scanner that stopped writing
    empty = tmp_path / "src" / "2019" / CASES[1] / "empty.tif"
    empty.write_bytes(b"")
    report = tmp_path / "report.csv"
    summary = run(tmp_path / "src", report)
    got = by_path(read_rows(report))
    assert got[str(bad.resolve())]["status"] == "failed"
    assert "hỏng" in got[str(bad.resolve())]["reason"] and "damaged" in got[str(bad.resolve())]["reason"]
    assert got[str(empty.resolve())]["status"] == "failed" and "0 bytes" in got[str(empty.resolve())]["reason"]
    assert summary["counts"] == {"stored": 3, "skipped": 0, "failed": 2, "no-case-id": 0}
    assert len(manifest_docs(data_dir, CASES[1])) == 1


def test_interrupted_run_resumes_without_redoing(tmp_path, data_dir):
    expected = make_tree(tmp_path / "src", per_case=2, no_case=0)
    first = run(tmp_path / "src", tmp_path / "r1.csv", stop_after=2)
    assert first["counts"]["stored"] == 2 and first["interrupted"]
    done_before = {r["path"] for r in read_rows(tmp_path / "r1.csv") if r["status"] == "stored"}
    second = run(tmp_path / "src", tmp_path / "r2.csv")
    rows = by_path(read_rows(tmp_path / "r2.csv"))
    assert set(rows) == set(expected)
    for path, row in rows.items():
        assert row["status"] == ("skipped" if path in done_before else "stored")
    assert second["counts"] == {"stored": 4, "skipped": 2, "failed": 0, "no-case-id": 0}
    for case in CASES:
        assert len(manifest_docs(data_dir, case)) == 2


def test_listing_is_streamed_and_progress_line(tmp_path):
    make_tree(tmp_path / "src", per_case=1)
    items = iter_source(tmp_path / "src")
    assert next(items).case_id in CASES  # a generator: nothing listed ahead
    line = Progress(10).line(4, 4, {"stored": 3, "skipped": 1})
    assert "4/10" in line and "trang/phút" in line and "stored 3" in line


def test_progress_is_a_plain_line_in_a_log_and_a_rich_bar_on_a_terminal(monkeypatch):
    import io

    log = io.StringIO()
    plain = Progress(4, stream=log)
    plain.note("✗ a.jpg: tệp bị hỏng")
    plain.update(2, 3, {"stored": 1, "failed": 1}, force=True)
    lines = log.getvalue().splitlines()
    assert lines[0] == "✗ a.jpg: tệp bị hỏng" and lines[1].startswith("[backfill] 2/4 tệp (50%) · 3 trang")
    assert "\x1b" not in log.getvalue()  # a log file gets no escape codes
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich's way to treat a stream as a person's terminal
    monkeypatch.setenv("COLUMNS", "160")
    screen = io.StringIO()
    bar = Progress(4, stream=screen)
    bar.note("✗ a.jpg: tệp bị hỏng")
    bar.update(4, 6, {"stored": 3, "failed": 1}, force=True)
    drawn = screen.getvalue()
    assert "━" in drawn and "4/4" in drawn and "stored 3" in drawn and "✗ a.jpg: tệp bị hỏng" in drawn
    assert "[backfill]" not in drawn  # the bar, not the log line
