"""The `sohoa` command explains itself: a help text for every command and option, --help that runs,
and progress bars only where a person watches (a terminal), plain lines for scripts."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from cli.main import build_app

REPO = Path(__file__).resolve().parents[1]
CASES = ("000.00.14.H56-200203-0118", "000.00.22.H56-181010-0002", "000.00.14.H56-190312-0004")


def _walk(command, path: tuple[str, ...] = ("sohoa",)):
    """(path, command) for the command and every sub-command below it."""
    yield path, command
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _walk(sub, (*path, name))


def test_every_command_and_option_has_a_help_text() -> None:
    root = typer.main.get_command(build_app())
    missing, seen = [], 0
    for path, command in _walk(root):
        seen += 1
        if not (command.help or "").strip():
            missing.append(" ".join(path))
        for param in command.params:
            if param.name == "help":
                continue
            if not (getattr(param, "help", None) or "").strip():
                missing.append(f"{' '.join(path)} {'/'.join(param.opts)}")
    assert not missing, f"no help text: {missing}"
    # The walk reached the whole tree (top-level commands and the groups' sub-commands).
    names = {" ".join(p) for p, _ in _walk(root)}
    assert seen > 30 and {"sohoa scan", "sohoa backfill", "sohoa user add", "sohoa audit verify",
                          "sohoa keys init-test", "sohoa token add"} <= names


def _sohoa(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True, env=full,
                          cwd=REPO, timeout=120)


def test_help_runs_for_the_command_and_a_subcommand(tmp_path) -> None:
    env = {"SOHOA_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "100"}
    top = _sohoa("--help", env=env)
    assert top.returncode == 0, top.stderr
    assert "Traceback" not in top.stderr
    for command in ("scan", "backfill", "search", "verify", "user", "audit"):
        assert command in top.stdout
    sub = _sohoa("search", "--help", env=env)
    assert sub.returncode == 0, sub.stderr
    flat = " ".join(sub.stdout.split())
    assert "--unit" in flat and "--since" in flat and "--json" in flat and "không dấu" in flat
    nested = _sohoa("user", "add", "-h", env=env)
    assert nested.returncode == 0 and "--password-stdin" in nested.stdout


def test_a_usage_error_is_one_sentence_with_exit_2(tmp_path) -> None:
    res = _sohoa("scan", env={"SOHOA_DATA_DIR": str(tmp_path / "data")})
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert "usage error" in res.stderr and "sohoa scan --help" in res.stderr
    bare = _sohoa(env={"SOHOA_DATA_DIR": str(tmp_path / "data")})  # no command at all: the list of commands
    assert bare.returncode == 2 and "Usage: sohoa" in bare.stdout and "backfill" in bare.stdout


def test_usage_errors_and_help_screens_speak_vietnamese_first(tmp_path) -> None:
    env = {"SOHOA_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "120"}
    said = {
        ("pdf", "x.png"): "thiếu tùy chọn '-o' / '--output'",
        ("pdf",): "thiếu tham số 'INPUT...'",
        ("pdf", "x.png", "-o", "y.pdf", "--jobs", "abc"): "giá trị của '--jobs' không hợp lệ",
        ("pdf", "x.png", "-o", "y.pdf", "--jobz", "3"): "không có tùy chọn --jobz; có phải là --jobs",
        ("nosuch",): "không có lệnh 'nosuch'",
        ("show", CASES[0], "extra"): "thừa tham số extra",
    }
    for args, vietnamese in said.items():
        res = _sohoa(*args, env=env)
        assert res.returncode == 2, (args, res.stderr)
        line = res.stderr.strip()
        assert len(line.splitlines()) == 1 and line.startswith(f"Lệnh chưa đúng cách dùng: {vietnamese}"), line
        assert "(usage error: " in line  # the library's English words stay, in brackets
    shown = _sohoa("pdf", "--help", env=env)
    assert shown.returncode == 0, shown.stderr
    for text in ("Tham số (Arguments)", "Tùy chọn (Options)", "[bắt buộc / required]",
                 "hiện trợ giúp này rồi thoát"):
        assert text in shown.stdout, text
    assert "Show this message" not in shown.stdout
    nested = _sohoa("user", "add", "-h", env=env)
    assert "hiện trợ giúp này rồi thoát" in nested.stdout and "Show this message" not in nested.stdout
    top = _sohoa("--help", env=env)
    assert "Lệnh (Commands)" in top.stdout


@pytest.fixture()
def three_cases(data_dir: Path, tmp_path: Path) -> Path:
    from flows.common import open_archive
    from models import DocumentRecord

    archive = open_archive()
    for n, case in enumerate(CASES):
        src = tmp_path / f"d{n}.tif"
        src.write_bytes(f"II*\0 scan {n}".encode())
        original = archive.store_original(case_id=case, document_id=f"doc-{n}", source_path=src,
                                          source_name=src.name, ext="tif")
        archive.record(DocumentRecord(case_id=case, document_id=f"doc-{n}", source_sha256=original.sha256,
                                      source_name=src.name, created_at="2020-02-03T08:00:00+00:00",
                                      page_count=1, keys={"source": original.key}))
    return data_dir


def test_progress_bar_on_a_terminal_plain_lines_elsewhere(three_cases) -> None:
    env = {"SOHOA_DATA_DIR": str(three_cases)}
    piped = _sohoa("verify", env=env | {"TTY_COMPATIBLE": "0"})
    assert piped.returncode == 0, piped.stderr
    assert piped.stderr == ""  # a script reading the output sees no bar and no escape codes
    assert "Checked 3 objects of 3 cases" in piped.stdout
    # TTY_COMPATIBLE=1 is Rich's way to treat the pipe as a terminal, as a person's screen would be.
    shown = _sohoa("verify", env=env | {"TTY_COMPATIBLE": "1", "COLUMNS": "120"})
    assert shown.returncode == 0, shown.stderr
    assert "Kiểm tra SHA-256" in shown.stderr and "/3" in shown.stderr and "━" in shown.stderr
    assert shown.stdout == piped.stdout  # the result itself is the same either way
