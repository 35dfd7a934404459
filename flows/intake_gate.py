"""The record gate: once a stopping run closes it, no document enters a manifest, and it knows which did."""
from __future__ import annotations

import contextlib
import threading
from typing import Any

from models import SohoaError


class Stopped(SohoaError):
    """The run is being stopped (Ctrl-C): this document was not recorded; the same command again finishes it."""

    exit_code = 130

    def __init__(self) -> None:
        super().__init__("Stopped before this document was recorded; run the same command again to finish it.",
                         "Đã dừng trước khi ghi nhận tài liệu này; chạy lại lệnh để hoàn tất.")


class RecordGate:
    """Lets a stopping run know exactly what was recorded: once closed, no document enters the manifest.

    Every manifest+catalog write of a document passes through ``enter``; ``close`` refuses new
    ones and waits for those under way, so after it the store holds exactly the documents noted
    in ``recorded`` (plus what was stored before).
    """

    def __init__(self) -> None:
        self._cv = threading.Condition()
        self._active = 0
        self.closed = False
        self.recorded: dict[str, dict[str, Any]] = {}  # source path -> manifest entry

    def reset(self) -> None:
        """Open again and forget what was noted (a new run in the same process)."""
        with self._cv:
            self.closed = False
            self.recorded = {}

    @contextlib.contextmanager
    def enter(self, path: str):  # type: ignore[no-untyped-def]
        with self._cv:
            if self.closed:
                raise Stopped()
            self._active += 1
        try:
            yield
        finally:
            with self._cv:
                self._active -= 1
                self._cv.notify_all()

    def note(self, path: str, entry: dict[str, Any]) -> None:
        with self._cv:
            self.recorded[path] = entry

    def close(self, timeout: float = 5.0) -> bool:
        """Refuse new records and wait (at most ``timeout`` s) for those under way; True when none is left."""
        with self._cv:
            self.closed = True
            return self._cv.wait_for(lambda: self._active == 0, timeout)


GATE = RecordGate()
