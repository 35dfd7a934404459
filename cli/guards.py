"""What the commands check about paths before any work (issue 21): output paths that are not plain
files, input names that cannot travel (not UTF-8), inputs over the bounds, and safe writes."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from models import SohoaError
from models.errors import InputFileError
from models.file_errors import BadFileName, BadOutputPath, DiskFullNothingStored
from pipeline.limits import check_input, printable


def refuse_special_output(path: str, what: str) -> None:
    """Refuse an output path that exists and is not a regular file (a FIFO, a device such as /dev/full, a
    socket): writing there would block, or replace the device with our file."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return  # a new name (or a symbolic link to nothing: the rename replaces the link)
    except OSError as exc:
        raise BadOutputPath(f"{what} {printable(path)} cannot be used ({exc.strerror}).",
                         f"Không dùng được tệp {printable(path)} ({exc.strerror}).") from None
    if not stat.S_ISREG(info.st_mode) and not stat.S_ISDIR(info.st_mode):
        raise BadOutputPath(f"{what} {printable(path)} exists and is not a regular file (a pipe, socket or device); "
                         "give the name of a new or ordinary file.",
                         f"{printable(path)} đã tồn tại và không phải tệp thông thường (đường ống, socket hay thiết "
                         "bị); hãy ghi tên một tệp mới hoặc tệp thông thường.")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to a temporary file next to ``path``, then rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def refuse_unsendable(files: list[str], case: str | None) -> tuple[list[str], list[dict[str, Any]]]:
    """Split the files of ``sohoa scan`` into those that can go to a flow and a failure report for each
    that cannot: a name that is not UTF-8 (Prefect cannot send it), or a file that is
    not a regular readable file within the upload limit (refused before Prefect starts for it)."""
    good: list[str] = []
    refused: list[dict[str, Any]] = []
    for f in files:
        name = printable(Path(f).name)
        try:
            try:
                f.encode("utf-8")
            except UnicodeEncodeError:
                raise BadFileName(name) from None
            check_input(Path(f))
        except InputFileError as exc:
            refused.append({"source_name": name, "case_id": case, "status": "failed", "error": exc.user_message(),
                              "error_type": type(exc).__name__, "message_vi": exc.message_vi,
                              "message_en": exc.message_en, "exit_code": exc.exit_code})
            continue
        good.append(f)
    return good, refused


def sentence_for(command: str | None, exc: SohoaError) -> SohoaError:
    """The error to print for ``command``: a full disk under ``sohoa pdf`` or ``check`` stored nothing."""
    from models.errors import DiskFull

    if isinstance(exc, DiskFull) and command in ("pdf", "check"):
        return DiskFullNothingStored()
    return exc
