"""Bounds every input file meets before any decoder runs, and file names made safe to print.

One place for what every entry point (``scan``, ``pdf``, ``check``, ``watch``, ``backfill``, the
desk) checks first: the path is a regular file we may open, and it is not larger than the upload
limit (``SOHOA_UPLOAD_LIMIT_MB``, default 500, the same bound the web upload has). Only
``stat`` and ``open`` are used: a FIFO or a device is never opened, so nothing blocks or reads for ever.
"""
from __future__ import annotations

import errno
import os
import stat
import unicodedata
from pathlib import Path

from models.errors import EmptyFile, MissingFile, UnsupportedFormat, UploadTooLarge
from models.file_errors import NotARegularFile, UnreadableFile

DEFAULT_UPLOAD_LIMIT_MB = 500
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# What a path is when it is not a regular file, in English and Vietnamese.
_KINDS = (
    (stat.S_ISFIFO, "a named pipe (FIFO)", "một đường ống có tên (FIFO)"),
    (stat.S_ISSOCK, "a socket", "một socket"),
    (stat.S_ISCHR, "a character device (like /dev/urandom)", "một thiết bị ký tự (như /dev/urandom)"),
    (stat.S_ISBLK, "a block device (a disk)", "một thiết bị khối (ổ đĩa)"),
)


def upload_limit() -> int:
    """The largest input file in bytes: SOHOA_UPLOAD_LIMIT_MB (default 500)."""
    raw = os.environ.get("SOHOA_UPLOAD_LIMIT_MB", "").strip()
    mb = int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_UPLOAD_LIMIT_MB
    return mb * 1024 * 1024


def printable(text: str) -> str:
    """``text`` with control characters and undecodable bytes escaped (\\x1b, \\n, \\xff), so a file
    name cannot set the terminal's title or split a one-line report."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # a byte of a name that was not UTF-8 (surrogateescape)
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif unicodedata.category(ch) in ("Cc", "Cs") or ch in "\u2028\u2029\u202e\u202d":
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def check_input(path: Path, *, limit: int | None = None) -> int:
    """The size of ``path`` when it is a regular, readable file within the upload limit; else a typed error."""
    path = Path(path)
    name = printable(path.name or str(path))
    try:
        info = path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise UnreadableFile(name, "it is a symbolic link to nothing", "đây là liên kết tượng trưng trỏ tới "
                                 "tệp không tồn tại") from None
        raise MissingFile(printable(str(path))) from None
    except OSError as exc:
        raise _unreadable(name, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise UnsupportedFormat(name, "it is a folder")
    if not stat.S_ISREG(info.st_mode):
        for test, what_en, what_vi in _KINDS:
            if test(info.st_mode):
                raise NotARegularFile(name, what_en, what_vi)
        raise NotARegularFile(name, "not a file", "không phải tệp")
    bound = upload_limit() if limit is None else limit
    if info.st_size > bound:
        raise UploadTooLarge(name, bound)
    if info.st_size == 0:
        raise EmptyFile(name)
    try:
        os.close(os.open(path, os.O_RDONLY))
    except OSError as exc:
        raise _unreadable(name, exc) from None
    return info.st_size


def _unreadable(name: str, exc: OSError) -> UnreadableFile:
    if exc.errno == errno.ELOOP:
        return UnreadableFile(name, "its symbolic links form a loop", "các liên kết tượng trưng tạo thành vòng lặp")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return UnreadableFile(name, "permission denied for the file or a folder above it",
                              "không có quyền đọc tệp hoặc một thư mục chứa nó")
    why = exc.strerror or type(exc).__name__
    return UnreadableFile(name, why, why)
