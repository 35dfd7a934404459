"""The check lane: the page checks of all uploads share one place per core, every upload's first page first."""
from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

Gate = Callable[[int], AbstractContextManager[None]]  # check_pages' gate: a place for the k-th page


class CheckLane:
    """The page checks of all jobs in this process share ``slots`` places (one per core), first pages first.

    Each job's check asks for a place per page (``job()`` gives it its ``gate`` for ``check_pages``):
    the waiting page with the lowest position in its own upload goes next, ties in order of arrival.
    Four operators uploading at once all get their first page's verdict before anyone's second page
    is read; the pages wait here, not on the cores, so they do not slow the ones being checked.
    """

    def __init__(self, slots: int, *, on_place: Callable[[], object] | None = None) -> None:
        self.slots = max(1, slots)
        self.on_place = on_place  # called as each page gets its place (the service lowers the OCR in flight)
        self._busy = 0
        self._waiting: list[tuple[int, int, int]] = []  # (position in its upload, arrival of the upload, ticket)
        self._cond = threading.Condition()
        self._arrivals = itertools.count()
        self._tickets = itertools.count()

    def job(self) -> Gate:
        """The gate of one check call: ``gate(k)`` holds a place for the k-th page it reads or checks."""
        arrival = next(self._arrivals)
        return lambda k: self._place(k, arrival)

    @contextmanager
    def _place(self, position: int, arrival: int) -> Iterator[None]:
        entry = (position, arrival, next(self._tickets))
        with self._cond:
            heapq.heappush(self._waiting, entry)
            while self._busy >= self.slots or self._waiting[0] != entry:
                self._cond.wait()
            heapq.heappop(self._waiting)
            self._busy += 1
            self._cond.notify_all()  # the next in line may take another free place
        try:
            if self.on_place is not None:
                self.on_place()
            yield
        finally:
            with self._cond:
                self._busy -= 1
                self._cond.notify_all()

    @property
    def pending(self) -> int:
        """Pages being checked or waiting for a place."""
        with self._cond:
            return self._busy + len(self._waiting)
