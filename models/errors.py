"""Every error a user can meet: a plain sentence (Vietnamese and English) and an exit code.

Exit codes (documented in README.md):
  0 ok · 1 unexpected internal error · 2 usage or malformed case ID · 3 input file unusable ·
  4 a page must be rescanned (``--strict`` / ``sohoa check``) · 5 storage error ·
  6 OCR / processing failed (original kept, rerun to finish) · 7 not found
"""
from __future__ import annotations


class SohoaError(Exception):
    """Base class: carries an exit code and one sentence for the operator in two languages."""

    exit_code = 1
    retryable = False

    def __init__(self, message_en: str, message_vi: str | None = None) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_vi = message_vi or message_en

    def __str__(self) -> str:
        return self.message_en

    def user_message(self) -> str:
        """The sentence shown to an operator: Vietnamese first, English after."""
        if self.message_vi == self.message_en:
            return self.message_en
        return f"{self.message_vi} ({self.message_en})"

    def __reduce__(self):
        # Keep both messages across pickling (Prefect and process pools pickle exceptions).
        return (_rebuild, (type(self), self.__dict__.copy()))


def _rebuild(cls, state):
    err = cls.__new__(cls)
    Exception.__init__(err, state.get("message_en", ""))
    err.__dict__.update(state)
    return err


# An example of a valid case ID, quoted in the sentence about an invalid one; kept here rather than
# in models/case_id.py because that module raises InvalidCaseId (errors sit below the models).
EXPECTED_SHAPE = "000.00.01.H56-181010-0001"


class InvalidCaseId(SohoaError):
    exit_code = 2

    def __init__(self, text: str, *, reason_en: str = "", reason_vi: str = "") -> None:
        en = f"'{text}' is not a valid case ID: expected the shape {EXPECTED_SHAPE} (agency code-yymmdd-sequence)"
        vi = f"'{text}' không phải mã hồ sơ hợp lệ: cần có dạng {EXPECTED_SHAPE} (mã cơ quan-yymmdd-số thứ tự)"
        if reason_en:
            en += f"; {reason_en}"
            vi += f"; {reason_vi or reason_en}"
        super().__init__(en + ".", vi + ".")
        self.text = text


class InputFileError(SohoaError):
    """The scan file cannot be used; the operator must rescan or re-export it."""

    exit_code = 3


class EmptyFile(InputFileError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is empty (0 bytes): the scanner did not finish writing it; scan the pages again.",
            f"Tệp {name} rỗng (0 byte): máy quét chưa ghi xong; hãy quét lại.",
        )


class MissingFile(InputFileError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} does not exist (no file or folder by that name); check the name and the folder.",
            f"Không có tệp {name} (không có tệp hay thư mục nào tên như vậy); hãy kiểm tra tên và thư mục.",
        )


class UnsupportedFormat(InputFileError):
    def __init__(self, name: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"{name} is not a PDF, TIFF, JPEG or PNG file{extra}; save the scan in one of those formats.",
            f"Tệp {name} không phải PDF, TIFF, JPEG hoặc PNG{extra}; hãy lưu bản quét ở một trong các định dạng đó.",
        )


class CorruptFile(InputFileError):
    def __init__(self, name: str, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"{name} is damaged or incomplete and cannot be read{extra}; scan it again.",
            f"Tệp {name} bị hỏng hoặc không đầy đủ, không đọc được{extra}; hãy quét lại.",
        )


class EncryptedPdf(InputFileError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"{name} is a password-protected PDF; ask for an unprotected copy or scan the paper.",
            f"Tệp {name} là PDF có mật khẩu; hãy xin bản không khóa hoặc quét bản giấy.",
        )


class ImageTooLarge(InputFileError):
    def __init__(self, name: str, width: int, height: int, limit: int) -> None:
        super().__init__(
            f"{name} has a page of {width}×{height} pixels, over the limit of {limit:,} pixels a page "
            "(SOHOA_MAX_PIXELS); scan at 200–600 dpi.",
            f"Tệp {name} có trang {width}×{height} điểm ảnh, vượt giới hạn {limit:,} điểm ảnh một trang "
            "(SOHOA_MAX_PIXELS); hãy quét ở 200–600 dpi.",
        )


class TooManyPages(InputFileError):
    def __init__(self, name: str, pages: int, limit: int) -> None:
        super().__init__(
            f"{name} has {pages:,} pages, over the limit of {limit:,} pages a file (SOHOA_MAX_PAGES); "
            "split it into smaller files.",
            f"Tệp {name} có {pages:,} trang, vượt giới hạn {limit:,} trang một tệp (SOHOA_MAX_PAGES); "
            "hãy tách thành các tệp nhỏ hơn.",
        )


class FileTooLarge(InputFileError):
    def __init__(self, name: str, pixels: int, limit: int) -> None:
        super().__init__(
            f"{name} holds {pixels:,} pixels in all its pages, over the limit of {limit:,} pixels a file "
            "(SOHOA_MAX_FILE_PIXELS); split it or scan at 200–300 dpi.",
            f"Tệp {name} có tổng {pixels:,} điểm ảnh, vượt giới hạn {limit:,} điểm ảnh một tệp "
            "(SOHOA_MAX_FILE_PIXELS); hãy tách tệp hoặc quét ở 200–300 dpi.",
        )


class NotAPageShape(InputFileError):
    def __init__(self, name: str, number: int, width: int, height: int) -> None:
        super().__init__(
            f"{name}: page {number} is {width}×{height} pixels, which is not the shape of a paper page; "
            "scan the page again.",
            f"Tệp {name}: trang {number} có kích thước {width}×{height} điểm ảnh, không phải hình dạng "
            "một trang giấy; hãy quét lại trang này.",
        )


class PageNeedsRescan(SohoaError):
    exit_code = 4

    def __init__(self, pages: list[int], reasons_en: list[str], reasons_vi: list[str]) -> None:
        super().__init__(
            "Rescan needed: " + "; ".join(reasons_en) + ".",
            "Cần quét lại: " + "; ".join(reasons_vi) + ".",
        )
        self.pages = pages


class StorageError(SohoaError):
    """A storage failure no retry can fix (access denied, missing bucket)."""

    exit_code = 5


class StorageUnavailable(StorageError):
    """The store cannot be reached now; retrying later will succeed."""

    retryable = True

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The document store cannot be reached ({detail}); the scan is kept and will be sent when it is back.",
            f"Không kết nối được kho lưu trữ ({detail}); bản quét được giữ lại và sẽ gửi khi kho hoạt động lại.",
        )


class OcrFailed(SohoaError):
    exit_code = 6


class DiskFull(OcrFailed):
    """A local disk (work folder, catalog, local store) is full: free space, then run again."""

    def __init__(self, detail: str = "") -> None:
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"The disk is full{extra}: free some space, then scan the file again; a stored original is kept "
            "and listed as not finished.",
            f"Ổ đĩa đã đầy{extra}: hãy giải phóng dung lượng rồi quét lại tệp; bản gốc đã lưu được giữ lại "
            "và ghi là chưa xử lý xong.",
        )


def as_disk_full(exc: BaseException) -> DiskFull | None:
    """A DiskFull for an exception caused by a full disk (ENOSPC, SQLite's "disk is full"), else None."""
    import errno

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DiskFull):
            return seen
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return DiskFull(seen.filename and str(seen.filename) or "")
        if "disk is full" in str(seen) or "No space left on device" in str(seen):
            return DiskFull()
        seen = seen.__cause__ or seen.__context__
    return None


class NotFound(SohoaError):
    exit_code = 7


class UploadTooLarge(InputFileError):
    """More than the upload limit: one file (``name``), or the whole upload as its length says (``None``)."""

    def __init__(self, name: str | None, limit: int) -> None:
        mb = limit // (1024 * 1024)
        what_en, what_vi = (f"{name} is", f"Tệp {name}") if name else ("The upload is", "Lượt tải lên này")
        super().__init__(
            f"{what_en} larger than the upload limit of {mb} MB; split the scan into several files.",
            f"{what_vi} lớn hơn giới hạn tải lên {mb} MB; hãy chia bản quét thành nhiều tệp.",
        )
        self.limit = limit


class JobConflict(SohoaError):
    """The job is past the point where this change is possible (e.g. a page of a stored job)."""

    exit_code = 2
