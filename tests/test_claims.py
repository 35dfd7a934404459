"""Claiming work atomically (issue 10 §1): two watchers on one inbox, two scans of one file at once."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from PIL import Image, ImageDraw

from flows.watch import CLAIM_DIR, HotFolder

CASE = "000.00.01.H56-181010-0001"


def _png(path: Path, text: str = "GIAY DE NGHI 2024") -> Path:
    im = Image.new("L", (900, 300), 255)
    ImageDraw.Draw(im).text((40, 120), text, fill=0, font_size=48)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, dpi=(300, 300))
    return path


def test_two_watchers_on_one_inbox_each_file_handled_once(tmp_path: Path) -> None:
    inbox, done, failed = tmp_path / "inbox", tmp_path / "done", tmp_path / "failed"
    calls: list[str] = []
    lock = threading.Lock()

    def ingest(path: Path, case_id: str | None) -> list[dict]:
        assert path.exists(), f"{path} handed to ingest but not there"
        with lock:
            calls.append(path.name)
        time.sleep(0.3)  # long enough for the other watcher to see the same file
        return [{"source_name": path.name, "status": "stored", "case_id": case_id, "document_id": path.stem}]

    folders = [HotFolder(inbox=inbox, done=done, failed=failed, ingest=ingest, default_case=CASE, workers=2,
                         settle=0.2, poll=0.05) for _ in range(2)]
    names = [f"scan{n}.png" for n in range(6)]
    for name in names:
        _png(inbox / name)
    stop = threading.Event()
    threads = [threading.Thread(target=f.run, args=(stop,), daemon=True) for f in folders]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len([p for p in done.glob("*.png")]) < len(names) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # let a late duplicate show itself
    stop.set()
    for t in threads:
        t.join(timeout=30)
    assert sorted(calls) == sorted(names), f"ingested {sorted(calls)}"
    assert sorted(p.name for p in done.glob("*.png")) == sorted(names)
    assert not [p for p in failed.rglob("*") if p.is_file()], "a file was filed as failed"
    assert not [p for p in (inbox / CLAIM_DIR).rglob("*") if p.is_file()]


def test_a_stopped_watchers_claims_go_back_to_the_inbox(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    dead = inbox / CLAIM_DIR / f"{os.uname().nodename}@999999999-abcd" / CASE / "a.png"
    _png(dead)
    HotFolder(inbox=inbox, done=tmp_path / "d", failed=tmp_path / "f", ingest=lambda p, c: [])
    assert (inbox / CASE / "a.png").is_file()


def test_a_run_never_removes_another_runs_work_folder(prefect_harness, data_dir: Path, tmp_path: Path) -> None:
    """Two scans of the same file at once used to share work/<sha> and the first to finish removed it."""
    from flows.intake import intake
    from pipeline.document import document_id_for
    from pipeline.reader import sha256_of

    page = _png(tmp_path / "page.png")
    sha = sha256_of(page)
    others = [data_dir / "work" / f"stack-{sha[:20]}", data_dir / "work" / document_id_for(sha)]
    for d in others:  # what a concurrent scan of the same file holds right now
        d.mkdir(parents=True)
        (d / "0001_raw.pgm").write_bytes(b"P5 1 1 255 \x00")
    [report] = intake(files=[str(page)], case_id=CASE)
    assert report["status"] == "stored", report
    for d in others:
        assert (d / "0001_raw.pgm").is_file(), f"{d} was removed by another run"
