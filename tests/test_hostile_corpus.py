"""Issue 21, items 21–27: hostile files and faults through the real commands.

Every file is made by tests/hostile_files.py. Each command runs as a subprocess (``python -m cli``)
under an address-space limit (RLIMIT_AS) and a generous timeout, so a runaway fails the test
instead of hanging it or the machine; there is no timing assertion. A refusal must be one
sentence: no traceback, no tool noise (poppler's "Syntax Error", Pillow's warnings), names escaped.
"""
from __future__ import annotations

import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pikepdf import Name

from tests import hostile_files as hf

ROOT = Path(__file__).resolve().parents[1]
MEMORY_LIMIT = 1536 * 1024 * 1024  # the address space a command may use; one page in flight needs ~600 MB
TIMEOUT = 300.0  # far above any honest run on a loaded 2-core machine: only a runaway reaches it
CASE = "000.00.01.H56-181010-0001"


def run(args: list[str | bytes], tmp: Path, env: dict[str, str] | None = None, *,
        prefix: list[str] | None = None) -> tuple[int, str]:
    """``python -m cli ARGS`` under RLIMIT_AS; returns (exit code, stdout+stderr). A runaway fails the test."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))

    home = tmp / "home"
    home.mkdir(exist_ok=True)
    full_env = os.environ | {"PYTHONPATH": str(ROOT), "SOHOA_DATA_DIR": str(tmp / "data"), "HOME": str(home),
                             "OMP_THREAD_LIMIT": "1", "TMPDIR": str(home)} | (env or {})
    try:
        proc = subprocess.run([*(prefix or []), sys.executable, "-m", "cli", *args], cwd=tmp, env=full_env, capture_output=True,
                              timeout=TIMEOUT, preexec_fn=limit)
    except subprocess.TimeoutExpired:
        pytest.fail(f"runaway: sohoa {args[0]!r} ran for more than {TIMEOUT:.0f} s")
    return proc.returncode, (proc.stdout + proc.stderr).decode("utf-8", errors="replace")


def one_sentence(output: str) -> str:
    """The output's one line; fails on a traceback, tool noise or several lines."""
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert "Traceback" not in output and "MemoryError" not in output, output[-3000:]
    for noise in ("Syntax Error", "Syntax Warning", "Warning:", "site-packages", "warnings.warn"):
        assert noise not in output, output[-3000:]
    assert len(lines) == 1, output[-3000:]
    return lines[0]


def refused(args: list[str | bytes], tmp: Path, env: dict[str, str] | None = None, code: int = 3) -> str:
    got, output = run(args, tmp, env)
    sentence = one_sentence(output)
    assert got == code, output[-3000:]
    return sentence


# ------------------------------------------------------------------ 21: tracebacks become one sentence
@pytest.mark.parametrize("fraction", [0.5, 0.9])
def test_cut_lzw_tiff_is_one_sentence_without_pillow_warning(tmp_path: Path, fraction: float) -> None:
    """Was: TypeError: Missing dimensions at the frame seek, after Pillow's 'Corrupt EXIF data' UserWarning (27)."""
    tiff = hf.lzw_tiff_cut(tmp_path / "cut.tif", fraction)
    assert "cut.tif" in refused(["check", str(tiff)], tmp_path)


@pytest.mark.parametrize("kind", ["rotate-scan", "userunit-scan", "rotate-text"])
def test_non_numeric_rotate_or_userunit_is_one_sentence(tmp_path: Path, kind: str) -> None:
    """Was: TypeError: Object is not numeric in the displayed-size code."""
    key = "Rotate" if kind.startswith("rotate") else "UserUnit"
    value = Name("/Ninety") if key == "Rotate" else Name("/Big")
    maker = hf.text_pdf if kind.endswith("text") else hf.image_pdf
    pdf = maker(tmp_path / f"{kind}.pdf", page_keys={key: value})
    assert f"/{key} is not a number" in refused(["check", str(pdf)], tmp_path)


def test_png_with_ztxt_bomb_is_one_sentence(tmp_path: Path) -> None:
    """Was: ValueError MAX_TEXT_CHUNK (only OSError was caught)."""
    png = hf.ztxt_bomb_png(tmp_path / "ztxt.png")
    assert "ztxt.png" in refused(["check", str(png)], tmp_path)


def test_symlink_loop_is_one_sentence(tmp_path: Path) -> None:
    """Was: OSError: Too many levels of symbolic links."""
    (tmp_path / "a.pdf").symlink_to(tmp_path / "b.pdf")
    (tmp_path / "b.pdf").symlink_to(tmp_path / "a.pdf")
    assert "loop" in refused(["check", str(tmp_path / "a.pdf")], tmp_path)
    assert "loop" in refused(["pdf", str(tmp_path / "a.pdf"), "-o", str(tmp_path / "out.pdf")], tmp_path)


def test_unreadable_file_or_folder_is_one_sentence(tmp_path: Path) -> None:
    """Was: PermissionError. Root reads everything: as root the command runs without the capabilities
    that let it (setpriv drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv (util-linux): root would read the file anyway")
        prefix = [setpriv, "--inh-caps=-dac_override,-dac_read_search",
                  "--bounding-set=-dac_override,-dac_read_search"]
    locked = hf.jpeg_file(tmp_path / "locked.jpg")
    folder = tmp_path / "closed"
    folder.mkdir()
    inner = hf.jpeg_file(folder / "inside.jpg")
    os.chmod(locked, 0)
    os.chmod(folder, 0)
    try:
        for path in (locked, inner):
            code, output = run(["check", str(path)], tmp_path, prefix=prefix)
            sentence = one_sentence(output)
            assert code == 3 and "permission" in sentence, output
    finally:
        os.chmod(folder, 0o755)


def test_scan_of_a_name_that_is_not_utf8_is_one_sentence(tmp_path: Path) -> None:
    """Was: UnicodeEncodeError when the flow parameters went to Prefect; now refused before Prefect starts."""
    name = os.fsencode(tmp_path) + b"/h\xf4-s\xff.jpg"
    hf.jpeg_file(Path(os.fsdecode(name)))
    code, output = run(["scan", name, "--case", CASE, "--in-process"], tmp_path)
    assert "Traceback" not in output and code == 3, output[-3000:]
    assert "UTF-8" in output and "\\xff" in output, output
    assert not (tmp_path / "data" / "objects").exists()


# ------------------------------------------------------------------ 22: runaways are bounded
@pytest.mark.parametrize("kind", ["rectangles", "flate-bomb", "huge-image"])
def test_runaway_pdfs_are_refused_within_bounds(tmp_path: Path, kind: str) -> None:
    """Was: 8.9 GB in the content-stream parse; a 1 GiB bomb copied into the PDF/A; pdftoppm with no bound."""
    maker = {"rectangles": hf.rectangles_pdf, "flate-bomb": hf.flate_bomb_pdf, "huge-image": hf.huge_image_pdf}[kind]
    pdf = maker(tmp_path / f"{kind}.pdf")
    out = tmp_path / "out.pdf"
    sentence = refused(["pdf", str(pdf), "-o", str(out)], tmp_path)
    assert f"{kind}.pdf" in sentence and not out.exists()


def test_bounded_inflate_stops_at_the_cap(tmp_path: Path) -> None:
    """The content check never inflates a stream whole: a 1 GiB bomb reads as 'over', a small one exactly."""
    import pikepdf

    from pipeline.pdf_inspect import bounded_bytes

    with pikepdf.open(hf.flate_bomb_pdf(tmp_path / "bomb.pdf", inflated=64 << 20)) as pdf:
        assert bounded_bytes(pdf.pages[0].obj.Contents, 1 << 20) is None
    with pikepdf.open(hf.flate_bomb_pdf(tmp_path / "small.pdf", inflated=1 << 20)) as pdf:
        contents = pdf.pages[0].obj.Contents
        assert bounded_bytes(contents, 4 << 20) == contents.read_bytes()


# ------------------------------------------------------------------ 23: no wrong output with exit 0
def test_pdf_with_truncated_page_jpeg_is_not_passed(tmp_path: Path) -> None:
    """Was: checked 'đạt' and stored with lines missing."""
    pdf = hf.truncated_jpeg_pdf(tmp_path / "cut-jpeg.pdf")
    assert "cut short" in refused(["check", str(pdf)], tmp_path)


@pytest.mark.parametrize("kind", ["zero", "names"])
def test_unusable_mediabox_is_refused(tmp_path: Path, kind: str) -> None:
    """Was: a 'PDF/A' with a 0×0 page; a MediaBox of names silently became US Letter."""
    if kind == "zero":
        pdf = hf.text_pdf(tmp_path / "zero.pdf", mediabox=[0, 0, 0, 0])
    else:
        pdf = hf.named_mediabox_pdf(tmp_path / "names.pdf")
    out = tmp_path / "out.pdf"
    sentence = refused(["pdf", str(pdf), "-o", str(out)], tmp_path)
    assert "page" in sentence and not out.exists()


# ------------------------------------------------------------------ 24: output paths
def test_output_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    """Was: -o FIFO and -o /dev/full were replaced by the PDF."""
    scan = hf.jpeg_file(tmp_path / "scan.jpg")
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    full_link = tmp_path / "full.pdf"
    full_link.symlink_to("/dev/full")
    targets = [(["-o", str(fifo)], fifo), (["-o", str(full_link)], full_link),
               (["-o", str(tmp_path / "new.pdf"), "--sidecar", str(fifo)], fifo)]
    try:
        device = tmp_path / "device"
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 7))  # a copy of /dev/full's node
        targets.append((["-o", str(device)], device))
    except PermissionError:
        device = None
    for args, target in targets:
        sentence = refused(["pdf", str(scan), *args], tmp_path, code=2)
        assert "not a regular file" in sentence, sentence
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.readlink(full_link) == "/dev/full"
    assert device is None or stat.S_ISCHR(os.lstat(device).st_mode)
    assert not (tmp_path / "new.pdf").exists()


# ------------------------------------------------------------------ 25: the upload limit and special files
def test_special_inputs_are_named_as_what_they_are(tmp_path: Path) -> None:
    """Was: 'empty (0 bytes): the scanner did not finish writing it' for a FIFO, a socket, /dev/urandom."""
    fifo = tmp_path / "scan.fifo"
    os.mkfifo(fifo)
    sock_path = tmp_path / "scan.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path, what in ((fifo, "FIFO"), (sock_path, "socket"), (Path("/dev/urandom"), "character device")):
            sentence = refused(["check", str(path)], tmp_path)
            assert "not a regular file" in sentence and what in sentence and "0 bytes" not in sentence, sentence
    finally:
        sock.close()


def test_upload_limit_applies_to_check_pdf_and_scan(tmp_path: Path) -> None:
    """Was: a small JPEG followed by gigabytes of zeros was stored as a 4.1 GB original by 'scan'."""
    big = hf.jpeg_file(tmp_path / "padded.jpg", padding=3 << 20)
    env = {"SOHOA_UPLOAD_LIMIT_MB": "1"}
    for args in (["check", str(big)], ["pdf", str(big), "-o", str(tmp_path / "out.pdf")]):
        assert "1 MB" in refused(args, tmp_path, env)
    code, output = run(["scan", str(big), "--case", CASE, "--in-process"], tmp_path, env)
    assert code == 3 and "1 MB" in output and "Traceback" not in output, output[-3000:]
    assert not list((tmp_path / "data").rglob("*.jpg")), "nothing is stored"


def test_every_entry_point_shares_the_input_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """watch, backfill and the desk read through sniff_format: the limit is there; the watcher takes such a
    file at once (to refuse it) instead of waiting for it to 'finish'."""
    from models.errors import UploadTooLarge
    from pipeline.reader import looks_complete, sniff_format

    monkeypatch.setenv("SOHOA_UPLOAD_LIMIT_MB", "1")
    big = hf.jpeg_file(tmp_path / "padded.jpg", padding=3 << 20)
    with pytest.raises(UploadTooLarge):
        sniff_format(big)
    assert looks_complete(big)
    monkeypatch.setenv("SOHOA_UPLOAD_LIMIT_MB", "8")
    assert sniff_format(big) == "jpeg"


def test_watch_refuses_a_file_over_the_upload_limit(prefect_harness, data_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The hot folder (and the intake flow under it) applies the same limit: the file goes to failed/ with
    its reason, nothing is stored (was: stored as a gigabyte original)."""
    import threading

    from flows.common import open_archive
    from flows.desk import intake
    from flows.watch import HotFolder

    monkeypatch.setenv("SOHOA_UPLOAD_LIMIT_MB", "1")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    hf.jpeg_file(inbox / "padded.jpg", padding=3 << 20)
    folder = HotFolder(inbox=inbox, done=tmp_path / "done", failed=tmp_path / "failed",
                       ingest=lambda p, c: intake(files=[str(p)], case_id=CASE), settle=0.5, poll=0.2)
    service = threading.Thread(target=folder.run, args=(threading.Event(),), kwargs={"max_files": 1}, daemon=True)
    service.start()
    service.join(timeout=TIMEOUT)
    assert not service.is_alive()
    reason = (tmp_path / "failed" / "padded.jpg.reason.txt").read_text("utf-8")
    assert "1 MB" in reason, reason
    assert open_archive().manifest_records(CASE) == []


# ------------------------------------------------------------------ 26: leftovers
def test_stale_work_folders_are_swept(tmp_path: Path) -> None:
    """Was: work folders of killed scans stayed in data/work/ for ever."""
    from flows import intake

    work = tmp_path / "work"
    work.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    hour_ago = time.time() - 3600
    folders = {}
    for label, owner_pid, when in (("killed", dead.pid, hour_ago), ("live", os.getpid(), hour_ago),
                                   ("old-unowned", None, time.time() - 3 * 86400),
                                   ("new-unowned", None, time.time())):
        folder = work / f"{label}-abc"
        (folder / "pages").mkdir(parents=True)
        (folder / "pages" / "0001_raw.pgm").write_bytes(b"P5 1 1 255 \x00")
        if owner_pid is not None:
            started = _start_time(owner_pid) if owner_pid == os.getpid() else "1"
            (folder / ".owner").write_text(f"{socket.gethostname()} {owner_pid} {started}\n")
        for path in (folder / "pages" / "0001_raw.pgm", folder / "pages", folder / ".owner", folder):
            if path.exists():
                os.utime(path, (when, when))
        folders[label] = folder
    mine = intake._claim_workdir(work, "doc")
    assert mine.is_dir()
    left = {p.name.rsplit("-", 1)[0] for p in work.iterdir()}
    assert left == {"live", "new-unowned", "doc"}, left


def _start_time(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]


def test_twelve_processes_migrate_a_fresh_postgres_catalog(pg_url: str, tmp_path: Path) -> None:
    """Was: Alembic ran concurrently and 2 of 12 failed on pg_type_typname_nsp_index."""
    _migrate_at_once(pg_url, tmp_path)


def test_twelve_processes_migrate_a_fresh_sqlite_catalog(tmp_path: Path) -> None:
    """Was: a service and a command opening a fresh SQLite catalog together: "table cases already exists"."""
    _migrate_at_once(f"sqlite:///{tmp_path / 'catalog.db'}", tmp_path)


def _migrate_at_once(url: str, tmp_path: Path) -> None:
    """12 processes migrate the catalog at ``url`` at the same moment; every one must succeed."""
    pg_url = url
    go = tmp_path / "go"
    script = ("import os, sys, time\n"
              "from storage.catalog import Catalog\n"
              "c = Catalog(sys.argv[1])\n"
              f"while not os.path.exists({str(go)!r}): time.sleep(0.005)\n"
              "c.migrate(); c.close()\n")
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", script, pg_url], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT) for _ in range(12)]
    time.sleep(3)  # every process has imported SQLAlchemy and Alembic and waits at the gate
    go.touch()
    outputs = [(p.wait(timeout=TIMEOUT), p.stdout.read().decode(errors="replace")) for p in procs]
    failed = [out for code, out in outputs if code != 0]
    assert not failed, failed[0][-3000:]


# ------------------------------------------------------------------ 27: noise
def test_truncated_pdf_sentence_has_no_poppler_lines(tmp_path: Path) -> None:
    """Was: poppler's 'Syntax Error: …' lines inside the sentence."""
    pdf = hf.truncated_pdf(tmp_path / "cut.pdf")
    assert "cut.pdf" in refused(["check", str(pdf)], tmp_path)


def test_control_characters_in_names_are_escaped(tmp_path: Path) -> None:
    """Was: an escape sequence in a name set the terminal title; a newline split the one-line-per-page output."""
    scan = hf.jpeg_file(tmp_path / "to\x1b]0;pwned\x07\nkhai.jpg")
    code, output = run(["check", str(scan)], tmp_path)
    assert code == 0 and "\x1b" not in output and "\x07" not in output, output
    page_lines = [ln for ln in output.splitlines() if " trang 1:" in ln]
    assert page_lines and page_lines[0].startswith("to\\x1b]0;pwned\\x07\\nkhai.jpg trang 1:"), output
    missing = tmp_path / "gone\x1b[2J.pdf"
    sentence = refused(["check", str(missing)], tmp_path)
    assert "\x1b" not in sentence and "gone\\x1b[2J.pdf" in sentence


def test_full_tmpdir_under_pdf_does_not_speak_of_a_stored_original(tmp_path: Path) -> None:
    """Was: 'a stored original is kept' for sohoa pdf, which stores nothing (TMPDIR full)."""
    small = tmp_path / "small-tmp"
    small.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(small)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for a full TMPDIR: {mounted.stderr.decode().strip()}")
    try:
        scan = hf.jpeg_file(tmp_path / "scan.jpg")
        code, output = run(["pdf", str(scan), "-o", str(tmp_path / "out.pdf")], tmp_path, {"TMPDIR": str(small)})
    finally:
        subprocess.run(["umount", str(small)], check=False)
    sentence = one_sentence(output)
    assert code == 6 and "disk is full" in sentence, output
    assert "original" not in sentence and "bản gốc" not in sentence, sentence
