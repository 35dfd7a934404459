"""Claiming work atomically (issue 10 §1): two watchers on one inbox, two scans of one file at once."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
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
    from flows.desk import intake
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


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def test_kill_9_of_scan_leaves_no_prefect_server_or_tesseract_behind(tmp_path: Path) -> None:
    """kill -9 of `sohoa scan` used to leave Prefect's temporary server running for 10+ minutes."""
    import signal
    import subprocess
    import sys

    from cli.reaper import _stat, descendants

    page = _png(tmp_path / "page.png")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env |= {"PREFECT_HOME": str(tmp_path / "prefect-home"), "SOHOA_DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "OMP_THREAD_LIMIT": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "cli", "scan", str(page), "--case", CASE], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, int] = {}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            kids = {p: s for p, s in descendants(proc.pid).items() if "reaper.py" not in _cmdline(p)}
            seen.update(kids)
            if any("uvicorn" in _cmdline(p) or "prefect" in _cmdline(p) for p in kids):
                break
            time.sleep(0.1)
        assert proc.poll() is None, "the scan ended before Prefect's temporary server was seen"
        time.sleep(1.0)
        seen.update({p: s for p, s in descendants(proc.pid).items() if "reaper.py" not in _cmdline(p)})
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        alive = seen
        while time.monotonic() < deadline:
            alive = {p: s for p, s in seen.items() if (st := _stat(p)) and st[1] == s}
            if not alive:
                break
            time.sleep(0.2)
        assert not alive, f"still running after kill -9 of the scan: {[_cmdline(p)[:80] for p in alive]}"
    finally:
        for pid, start in seen.items():
            st = _stat(pid)
            if st and st[1] == start:
                os.kill(pid, signal.SIGKILL)


def test_disk_full_is_a_clear_error_and_the_stored_original_stays_listed(prefect_harness, data_dir: Path,
                                                                          tmp_path: Path) -> None:
    """A full disk used to end in a traceback, with the original stored but listed in no manifest."""
    import subprocess

    from flows.common import open_archive
    from flows.desk import intake

    work = data_dir / "work"
    work.mkdir(parents=True)
    # A real full disk: a small tmpfs as the work folder. Reading the colour A4 page for the check
    # fits (~25 MB), processing it (raw + cleaned + colour + OCR images, ~51 MB) does not.
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=36m", "tmpfs", str(work)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({mounted.stderr.strip()}): disk-full path not tested")
    try:
        im = Image.new("RGB", (2480, 3508), "white")
        draw = ImageDraw.Draw(im)
        for i in range(12):
            draw.text((200, 300 + 120 * i), f"CONG HOA XA HOI CHU NGHIA VIET NAM {i}", fill="black", font_size=60)
        draw.ellipse((1500, 2800, 2100, 3400), outline="red", width=30)  # a seal: the colour is kept
        src = tmp_path / "a4.png"
        im.save(src, dpi=(300, 300))
        [report] = intake(files=[str(src)], case_id=CASE)
        assert report["status"] == "failed" and report["error_type"] == "DiskFull", report
        assert report["exit_code"] == 6 and "Ổ đĩa đã đầy" in report["message_vi"]
        archive = open_archive()
        listing = archive.read_case(CASE)
        assert not listing.documents and list(listing.pending), "the stored original is listed nowhere"
        [problem] = archive.verify(CASE)
        assert problem.problem == "incomplete"
        assert not any(work.iterdir()), "work files left on the full disk"
        # Space again: the same scan finishes and the listing is complete.
        subprocess.run(["mount", "-o", "remount,size=400m", str(work)], check=True)
        [again] = intake(files=[str(src)], case_id=CASE)
        assert again["status"] == "stored", again
        listing = archive.read_case(CASE)
        assert [d["document_id"] for d in listing.documents] == [again["document_id"]] and not listing.pending
        assert archive.verify(CASE) == []
    finally:
        subprocess.run(["umount", "-l", str(work)], capture_output=True)
