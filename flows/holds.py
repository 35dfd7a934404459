"""Whether a checked desk job waits for the operator's "Lưu" before anything is stored."""
from __future__ import annotations

from typing import Any

from models.jobs import ScanJob, hold_reason


def decide_hold(job: ScanJob, options: dict[str, Any]) -> dict[str, Any] | None:
    """The job's hold, or None to go on storing.

    Besides ``hold_reason``: a page replaced while the job waited for the operator is shown to them
    once it is checked, even when it passes (a copy of another page passes too); "Lưu" stores it.
    """
    if options.get("confirmed"):
        return None
    hold = hold_reason(job)
    replaced = [n for n in options.get("replaced") or [] if any(p.number == n for p in job.pages)]
    if hold is None and replaced and job.on_rescan == "hold":
        listed = ", ".join(map(str, replaced))
        hold = {"code": "replaced", "pages": replaced,
                "message_vi": f"Đã thay trang {listed}: xem lại trang mới rồi bấm \"Lưu\" để lưu hồ sơ.",
                "message_en": f"Page(s) {listed} replaced: look at the new page, then press \"Store\" to store."}
    return hold
