"""The OCR in flight lowered while pages are checked, so verdicts do not wait behind another's OCR."""
from __future__ import annotations

import os

# While pages are being checked, the service's OCR in flight (its Tesseract processes) is lowered to
# this niceness (SOHOA_OCR_NICE), so that the next operator's verdicts are not queued behind another
# dossier's OCR on a small machine. Otherwise OCR runs at the service's own priority: a lower one for
# good would let every other program on the machine slow the storing down.
OCR_NICENESS = 10


def lower_ocr(niceness: int | None = None) -> int:
    """Lower this process's Tesseract processes and in-process reading threads (the OCR in flight) to
    ``niceness``; how many were lowered.

    Raising a niceness needs no privilege (lowering it back would), so a page's OCR stays lowered
    until that page is read; the next page's Tesseract starts at the service's own priority again.
    Linux only (``/proc``); elsewhere nothing is lowered.
    """
    if niceness is None:
        niceness = int(os.environ.get("SOHOA_OCR_NICE") or OCR_NICENESS)
    from pipeline.ocr import reading_threads

    lowered = 0
    inside = reading_threads()  # the in-process engine reads in this process's worker threads
    for pid in _children() | inside:
        try:
            if pid not in inside:
                with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
                    if f.read().strip() != "tesseract":
                        continue
            if os.getpriority(os.PRIO_PROCESS, pid) < niceness:
                os.setpriority(os.PRIO_PROCESS, pid, niceness)
                lowered += 1
        except OSError:  # it has just ended
            continue
    return lowered


def _children() -> set[int]:
    """This process's child processes (started by any of its threads)."""
    pids: set[int] = set()
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return pids
    for tid in tasks:
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as f:
                pids.update(int(p) for p in f.read().split())
        except (OSError, ValueError):
            continue
    return pids
