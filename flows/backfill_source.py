"""The backfill's listing: the files of a tree or a CSV, streamed, each with the case it belongs to."""
from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from models import CaseId, InvalidCaseId
from models.errors import InputFileError

SCAN_SUFFIXES = {".pdf", ".tif", ".tiff", ".jpg", ".jpeg", ".png"}
CASE_FROM = ("folder", "csv", "qr")


@dataclass(frozen=True)
class Item:
    """One source file and the case it belongs to (``case_id`` None: no usable case ID, ``reason`` says why)."""

    path: str
    case_id: str | None
    kind: str | None = None
    reason: str = ""
    case_from_qr: bool = False
    refused: bool = False  # outside the source tree (reason says why): reported, never ingested


def _outside(path: Path, root: Path) -> Item | None:
    """A refusal for a file that is not inside ``root`` once symlinks and '..' are resolved, else None."""
    real = path.resolve()
    if real == root or root in real.parents:
        return None
    return Item(path=str(path), case_id=None, refused=True,
                reason=f"tệp nằm ngoài thư mục nguồn ({real}); dùng --allow-outside nếu đó là chủ ý "
                       f"(the file is outside the source tree ({real}); use --allow-outside if that is meant)")


def _case_of_folder(path: Path, root: Path) -> str | None:
    """The nearest folder (from the file upwards, up to ``root``) whose name is a valid case ID."""
    for folder in path.parents:
        if CaseId.is_valid(folder.name):
            return str(CaseId.parse(folder.name))
        if folder == root or folder == folder.parent:
            return None
    return None


def _walk_files(root: Path, *, exclude: Path | None = None) -> Iterator[Path]:
    """Scan files under ``root`` in a stable order (sorted per folder), streamed, hidden entries skipped."""
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and (exclude is None or (here / d).resolve() != exclude))
        for name in sorted(filenames):
            if not name.startswith(".") and Path(name).suffix.lower() in SCAN_SUFFIXES:
                yield here / name


def iter_source(source: Path, *, case_from: str = "folder", exclude: Path | None = None,
                allow_outside: bool = False) -> Iterator[Item]:
    """Stream the items of a directory tree or a CSV of ``path,case_id[,kind]``; never guesses a case.

    Files must lie inside the tree (or the CSV's folder) once symlinks and '..' are resolved;
    others come back refused unless ``allow_outside``.
    """
    source = Path(source).resolve()
    if case_from == "csv" or (source.is_file() and source.suffix.lower() == ".csv"):
        for item in _iter_csv(source):
            refusal = None if allow_outside else _outside(Path(item.path), source.parent)
            yield refusal or item
        return
    if not source.is_dir():
        raise InputFileError(f"{source} is neither a folder nor a CSV file of path,case_id[,kind].",
                             f"{source} không phải thư mục cũng không phải tệp CSV đường_dẫn,mã_hồ_sơ[,loại].")
    for path in _walk_files(source, exclude=exclude):
        refusal = None if allow_outside else _outside(path, source)
        if refusal is not None:
            yield refusal
            continue
        if case_from == "qr":
            yield Item(path=str(path), case_id=None, case_from_qr=True)
            continue
        case = _case_of_folder(path, source)
        if case is None:
            yield Item(path=str(path), case_id=None,
                       reason="không có thư mục nào mang mã hồ sơ hợp lệ (no folder named with a valid case ID)")
        else:
            yield Item(path=str(path), case_id=case)


def _iter_csv(csv_path: Path) -> Iterator[Item]:
    """Rows of ``path,case_id[,kind]`` (a header row is allowed); relative paths are relative to the CSV."""
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        for number, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
                continue
            if number == 1 and row[0].strip().lower() == "path":
                continue
            path = Path(row[0].strip())
            path = path if path.is_absolute() else (csv_path.parent / path)
            text = row[1].strip() if len(row) > 1 else ""
            kind = (row[2].strip() or None) if len(row) > 2 else None
            try:
                yield Item(path=str(path.resolve()), case_id=str(CaseId.parse(text)), kind=kind)
            except InvalidCaseId as exc:
                reason = (f"dòng {number}: {exc.message_vi} (line {number}: {exc.message_en})" if text
                          else f"dòng {number}: thiếu mã hồ sơ (line {number}: no case ID)")
                yield Item(path=str(path.resolve()), case_id=None, kind=kind, reason=reason)


def case_from_first_page(path: Path, work_root: Path) -> tuple[str | None, str]:
    """The case ID on the first page's QR code (a cover sheet or receipt), or None and the reason."""
    import shutil

    from pipeline.document import check_pages
    from pipeline.reader import sha256_of

    from flows.intake import _claim_workdir

    workdir = _claim_workdir(work_root, f"qr-{sha256_of(path)[:20]}")
    try:
        outcomes = check_pages([path], workdir=workdir, jobs=1, pages={1}, detect_qr=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    finding = outcomes[0].qr if outcomes else None
    if finding is None:
        return None, "trang đầu không có mã QR mã hồ sơ (no case-ID QR code on the first page)"
    if finding.case_id is None:
        return None, (f"mã QR trang đầu không phải mã hồ sơ hợp lệ: {finding.text!r} "
                      f"(the first page's QR code is not a valid case ID)")
    return str(finding.case_id), ""


def count_files(source: Path, *, case_from: str, exclude: Path | None = None, allow_outside: bool = False) -> int:
    """How many files the listing holds (a streamed pass, names only), for the ETA."""
    return sum(1 for _ in iter_source(source, case_from=case_from, exclude=exclude, allow_outside=allow_outside))
