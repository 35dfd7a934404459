"""Webhook events: of scan jobs (``job.checked``, ``job.waiting``, ``job.failed``, for each case of the job)
and of documents (``document.stored``, ``document.signed``).

Called by ``JobStore.update`` after a status change was committed; it reads the job once and writes
one outbox event per case the job holds (a stack split by cover sheets tells each case's unit about
its own pages only). Never raises: telling the e-system must not stop intake.
"""
from __future__ import annotations

import logging
from typing import Any

from models.jobs import CHECKED, FAILED, WAITING
from storage import outbox

log = logging.getLogger(__name__)
JOB_EVENTS = {CHECKED: "job.checked", WAITING: "job.waiting", FAILED: "job.failed"}


def job_changed(store: Any, job_id: str, status: str) -> None:
    """Queue the webhook event of a job that has just reached ``status`` (other statuses: nothing)."""
    event_type = JOB_EVENTS.get(status)
    if event_type is None:
        return
    try:
        job = store.get(job_id)
        if job is None:
            return
        case_pages: dict[str, set[int]] = {}
        for d in job.documents:
            if d.case_id:
                case_pages.setdefault(d.case_id, set()).update(d.pages)
        for segment in (job.stack or {}).get("segments") or []:
            if isinstance(segment, dict) and segment.get("case_id"):
                case_pages.setdefault(segment["case_id"], set()).update(segment.get("pages") or [])
        if job.case_id and not case_pages:
            case_pages[job.case_id] = {p.number for p in job.pages}
        for case_id, pages in sorted(case_pages.items()):
            data = {"job_id": job.id, "status": status, "case_id": case_id, "pages": sorted(pages),
                    "rescan_pages": [p.number for p in job.pages if p.number in pages and p.needs_rescan],
                    "error": _vi(job.error)}
            outbox.emit(store.catalog.engine, event_type, case_id=case_id, data=data)
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        log.warning("webhook event of job %s (%s) not recorded: %s", job_id, status, str(exc).splitlines()[0])


def _vi(error: Any) -> str | None:
    """The job's error sentence (Vietnamese first) without any internal detail."""
    if not error:
        return None
    if isinstance(error, dict):
        return error.get("message_vi") or error.get("message") or None
    return str(error)[:300]


def document_changed(engine: Any, event_type: str, rec: Any, *, reused_from: str | None = None) -> None:
    """Queue ``document.stored`` / ``document.signed`` for a catalogued document (never raises).

    ``reused_from``: ``rec`` is an e-copy of that case attached to ``rec.case_id`` (only the new case's
    unit is told, under the new case's URLs).
    """
    try:
        base = f"/api/v1/cases/{rec.case_id}/documents/{rec.document_id}"
        data = {"case_id": rec.case_id, "document_id": rec.document_id, "result_code": rec.result_code,
                "source_name": rec.source_name, "kind": rec.kind, "page_count": rec.page_count,
                "source_sha256": rec.source_sha256,
                "signatures": [{k: s.get(k) for k in ("role", "signer", "signed_at", "level")} for s in rec.signatures],
                "links": {"self": base, "searchable_pdf": f"{base}/searchable.pdf"}}
        if reused_from:
            data["reused_from"] = reused_from
        outbox.emit(engine, event_type, case_id=rec.case_id, data=data)
    except Exception as exc:  # noqa: BLE001 - see the module docstring
        log.warning("webhook event %s of %s not recorded: %s", event_type, getattr(rec, "document_id", "?"),
                    str(exc).splitlines()[0])
