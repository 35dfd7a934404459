"""Sentences for input files that are not files at all, cannot be opened, or are over a bound (issue 21)."""
from __future__ import annotations

from models.errors import InputFileError, OcrFailed, SohoaError


class NotARegularFile(InputFileError):
    """A FIFO, a socket, a device (``/dev/urandom``): never opened, never read."""

    def __init__(self, name: str, what_en: str, what_vi: str) -> None:
        super().__init__(
            f"{name} is not a regular file but {what_en}; give a scan file.",
            f"{name} không phải tệp thông thường mà là {what_vi}; hãy đưa vào một tệp bản quét.",
        )


class UnreadableFile(InputFileError):
    """The file or a folder above it cannot be opened (permissions, a symbolic-link loop)."""

    def __init__(self, name: str, why_en: str, why_vi: str) -> None:
        super().__init__(
            f"{name} cannot be opened ({why_en}); check the file's permissions and name.",
            f"Không mở được tệp {name} ({why_vi}); hãy kiểm tra quyền truy cập và tên tệp.",
        )


class BadFileName(InputFileError):
    """A file name that is not valid UTF-8: it cannot be recorded in the catalog or the manifest."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"The file name {name} is not valid UTF-8 text; rename the file (e.g. without accents) and scan it again.",
            f"Tên tệp {name} không phải văn bản UTF-8 hợp lệ; hãy đổi tên tệp (ví dụ bỏ dấu) rồi quét lại.",
        )


class OverBound(InputFileError):
    """A part of a file that would take unbounded memory or time to decode (a bomb, a runaway)."""

    def __init__(self, name: str, what_en: str, what_vi: str) -> None:
        super().__init__(
            f"{name} is refused: {what_en}; this is not an ordinary scan, export or scan it again.",
            f"Tệp {name} bị từ chối: {what_vi}; đây không phải bản quét thông thường, hãy xuất hoặc quét lại.",
        )


class DiskFullNothingStored(OcrFailed):
    """A full disk for a command that stores nothing (``sohoa pdf``): no original to speak of."""

    def __init__(self, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"The disk is full{extra}: free some space (or set TMPDIR to a larger disk), then run the command again; "
            "nothing was written.",
            f"Ổ đĩa đã đầy{extra}: hãy giải phóng dung lượng (hoặc đặt TMPDIR sang ổ lớn hơn) rồi chạy lại lệnh; "
            "chưa ghi tệp nào.",
        )


class BadOutputPath(SohoaError):
    """An output path that must not be written (a pipe, a device): a usage error, exit 2."""

    exit_code = 2
