"""Storing a checked desk job: one ``intake-job`` flow run for its documents, the outcome on the job."""
from __future__ import annotations

import logging
import shutil
import threading

from models.jobs import FAILED, PROCESSING, SPOOLED, STORED, WAITING, ScanJob
from flows.job_check import plan_requests
from flows.service_prefect import crash_stale_runs, no_flow_heartbeats
from storage.job_pages import start_storing
from storage.jobs import JobStore

log = logging.getLogger("sohoa.service")


def store_job(store: JobStore, job: ScanJob, *, jobs: int | None = None) -> ScanJob:
    """Run the ``intake-job`` flow for the job's documents and record the outcome on the job."""
    from flows.intake import intake_job, listen_progress, stop_listening

    if job.status in (PROCESSING, WAITING, SPOOLED):  # an earlier attempt may have left its run "Running"
        try:
            crash_stale_runs(job.id)
        except Exception:  # noqa: BLE001 - only the record's tidiness is at stake
            log.warning("could not mark the earlier runs of job %s as crashed", job.id, exc_info=True)
    if not start_storing(store, job.id):  # a page was replaced meanwhile: it is checked (and shown) first
        return store.require(job.id)
    documents = job.documents
    lock = threading.Lock()
    planned = plan_requests(store, job)
    for index, _ in planned:
        documents[index].status = "processing"
        documents[index].pages_done = 0

        def progress(_page: int, index: int = index) -> None:
            with lock:
                documents[index].pages_done += 1
                store.update(job.id, documents=documents)

        listen_progress(f"{job.id}:{index}", progress)
    store.update(job.id, documents=documents)
    try:
        reports = []
        if planned:
            with no_flow_heartbeats():
                reports = intake_job.with_options(flow_run_name=f"job-{job.id}")(
                    job_id=job.id, requests=[r for _, r in planned], jobs=jobs)
    finally:
        for index, _ in planned:
            stop_listening(f"{job.id}:{index}")
    for (index, _), report in zip(planned, reports, strict=True):
        doc = documents[index]
        doc.status = report.get("status", "failed")
        doc.document_id = report.get("document_id")
        doc.report = report
        if doc.status in ("stored", "already-stored"):
            doc.pages_done = len(doc.pages)
    failed = [d for d in documents if d.status in ("failed", "refused")]
    error = None
    if failed:
        r = failed[0].report or {}
        error = {"code": r.get("error_type", "failed"), "message_vi": r.get("message_vi"),
                 "message_en": r.get("message_en"), "exit_code": r.get("exit_code", 1)}
    status = FAILED if failed else STORED
    store.update(job.id, status=status, documents=documents, error=error, next_attempt_at=None)
    if status == STORED:
        shutil.rmtree(store.job_dir(job.id) / "work", ignore_errors=True)
    log.info("job %s %s: %s", job.id, status, ", ".join(f"{d.case_id}/{d.document_id} {d.status}" for d in documents))
    return store.require(job.id)
