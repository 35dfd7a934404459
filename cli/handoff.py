"""``sohoa scan`` through a running intake service: the scan costs its own work, not Prefect's start-up.

When a service (``sohoa service``, or the web app, which runs one) has sent a heartbeat to the
catalog database in the last seconds, each file becomes a scan job in the shared job store; the
service checks its pages at once (printed here as they come) and stores it. Without a service the
caller falls back to running the intake flow in this process, as before.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from models import SohoaError
from models.jobs import CHECKED, FAILED, SPOOLED, STORED, WAITING, JobPage, ScanJob

POLL = 0.1


def open_service_store():
    """The job store when a service is alive to take jobs, else None (imports no Prefect)."""
    from flows.service import open_job_store  # flows.service imports Prefect only inside its functions

    try:
        store = open_job_store()
        return store if store.live_services() else None
    except SohoaError:
        return None  # no catalog reachable: no service either


def scan_via_service(store, files: list[str], *, case_id: str | None, kind: str | None, operator: str | None,
                     strict: bool, jobs: int | None, on_page: Callable[[JobPage], None] | None = None,
                     on_wait: Callable[[ScanJob], None] | None = None,
                     on_file: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """One job per file (each file is one stack, as ``sohoa scan`` always did); reports in file order.

    ``on_file`` is called after each file, done or refused (the command's progress bar).
    """
    from pipeline.reader import sniff_format

    results: list[dict[str, Any]] = []
    for f in files:
        path = Path(f)
        try:
            sniff_format(path)  # a missing or unusable file is refused here, at once
            job = store.create([path], case_id=case_id, operator=operator, kind=kind, origin="cli",
                               on_rescan="refuse" if strict else "store", jobs=jobs)
        except SohoaError as exc:
            results.append(failure(path.name, case_id, exc))
        else:
            results.extend(job_reports(wait(store, job.id, on_page=on_page, on_wait=on_wait)))
        if on_file:
            on_file()
    return results


def wait(store, job_id: str, *, on_page: Callable[[JobPage], None] | None = None,
         on_wait: Callable[[ScanJob], None] | None = None) -> ScanJob:
    """Follow a job until it is stored, failed, spooled or held; page verdicts reported as they come."""
    shown: dict[int, int] = {}
    told_waiting = False
    while True:
        job = store.require(job_id)
        for page in job.pages:
            if page.status == "checked" and shown.get(page.number) != page.version:
                shown[page.number] = page.version
                if on_page:
                    on_page(page)
        if job.status in (STORED, FAILED, SPOOLED) or (job.status == CHECKED and job.hold):
            return job
        if job.status == WAITING and not told_waiting:
            told_waiting = True
            if on_wait:
                on_wait(job)
        time.sleep(POLL)


def failure(name: str, case_id: str | None, exc: SohoaError) -> dict[str, Any]:
    return {"source_name": name, "case_id": case_id, "status": "failed", "error": exc.user_message(),
            "error_type": type(exc).__name__, "message_vi": exc.message_vi, "message_en": exc.message_en,
            "exit_code": exc.exit_code}


def job_reports(job: ScanJob) -> list[dict[str, Any]]:
    """The job as the per-document reports ``sohoa scan`` prints (same shape as the intake flow's)."""
    name = job.files[0].name if job.files else "?"
    stack = job.stack or {}
    if job.status == FAILED and not any(d.report for d in job.documents):
        err = job.error or {}
        vi, en = err.get("message_vi") or "", err.get("message_en") or ""
        return [{"source_name": name, "case_id": job.case_id, "status": "failed", "job_id": job.id,
                 "error": f"{vi} ({en})" if vi and vi != en else en, "error_type": err.get("code"),
                 "message_vi": vi, "message_en": en, "exit_code": err.get("exit_code", 1)}]
    out = []
    for doc in job.documents:
        base = {"job_id": job.id, "stack_pages": doc.pages, "stack": stack}
        if doc.report:
            out.append(doc.report | base)
        elif doc.case_id is None:
            span = f"{doc.pages[0]}–{doc.pages[-1]}" if len(doc.pages) > 1 else str(doc.pages[0])
            out.append(base | {
                "source_name": name, "case_id": None, "status": "needs-case-id", "exit_code": 2,
                "message_vi": f"Trang {span} của {name} chưa có mã hồ sơ; chạy 'sohoa scan TỆP --case MÃ-HỒ-SƠ'.",
                "message_en": f"Pages {span} of {name} have no case ID; run 'sohoa scan FILE --case CASE-ID'."})
        elif job.status == SPOOLED:
            err = job.error or {}
            out.append(base | {"source_name": name, "case_id": doc.case_id, "status": "spooled", "exit_code": 5,
                               "error": f"{err.get('message_vi')} ({err.get('message_en')})",
                               "message_vi": err.get("message_vi"), "message_en": err.get("message_en")})
        else:
            out.append(base | {"source_name": name, "case_id": doc.case_id, "status": job.status,
                               "exit_code": 1, "error": (job.hold or {}).get("message_en", job.status)})
    return out


def page_line(page: JobPage) -> str:
    """The line ``sohoa scan`` prints (on stderr) for each page the service has checked."""
    return f"  {page.sentence_vi()}"


# ----------------------------------------------------------------------------- over HTTP
def service_url() -> tuple[str, str] | None:
    """(base URL, API token) of the web app to hand scans to, from SOHOA_URL and SOHOA_TOKEN(_FILE).

    The token is read from the environment or a file, never from the command line (where every
    user of the machine could read it in the process list).
    """
    import os

    url = (os.environ.get("SOHOA_URL") or "").rstrip("/")
    token = os.environ.get("SOHOA_TOKEN") or ""
    token_file = os.environ.get("SOHOA_TOKEN_FILE")
    if not token and token_file:
        token = Path(token_file).read_text("utf-8").strip()
    return (url, token) if url and token else None


def scan_via_http(url: str, token: str, files: list[str], *, case_id: str, kind: str | None, strict: bool,
                  on_page: Callable[[dict[str, Any]], None] | None = None,
                  on_file: Callable[[], None] | None = None,
                  timeout: float = 3600.0) -> list[dict[str, Any]]:
    """POST each file to ``/api/v1/cases/{case}/scans`` and follow its job; reports in file order.

    ``on_file`` is called after each file, done or refused (the command's progress bar).
    """
    import httpx

    from pipeline.reader import sniff_format

    headers = {"Authorization": f"Bearer {token}"}
    results: list[dict[str, Any]] = []
    with httpx.Client(base_url=url, headers=headers, timeout=60.0) as client:
        for f in files:
            path = Path(f)
            try:
                sniff_format(path)
            except SohoaError as exc:
                results.append(failure(path.name, case_id, exc))
                if on_file:
                    on_file()
                continue
            params = {"on_rescan": "refuse" if strict else "store"} | ({"kind": kind} if kind else {})
            with open(path, "rb") as body:
                r = client.post(f"/api/v1/cases/{case_id}/scans", params=params,
                                files={"files": (path.name, body, "application/octet-stream")})
            if r.status_code != 202:
                detail = _detail(r)
                results.append({"source_name": path.name, "case_id": case_id, "status": "failed",
                                "error": detail, "message_vi": detail, "message_en": detail,
                                "exit_code": 5 if r.status_code >= 500 else 2})
                if on_file:
                    on_file()
                continue
            job_url = r.json()["links"]["self"]
            shown: dict[int, int] = {}
            deadline = time.monotonic() + timeout
            while True:
                job = client.get(job_url).json()
                for page in job.get("pages", []):
                    if page["status"] == "checked" and shown.get(page["number"]) != page["version"]:
                        shown[page["number"]] = page["version"]
                        if on_page:
                            on_page(page)
                if job["status"] in (STORED, FAILED, SPOOLED) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            results.extend(_http_reports(job, path.name))
            if on_file:
                on_file()
    return results


def _detail(r) -> str:  # type: ignore[no-untyped-def]
    try:
        d = r.json()
    except ValueError:
        return f"HTTP {r.status_code}"
    if d.get("message_vi"):
        return f"{d['message_vi']} ({d['message_en']})"
    return f"HTTP {r.status_code}: {d.get('detail')}"


def _http_reports(job: dict[str, Any], name: str) -> list[dict[str, Any]]:
    err = job.get("error") or {}
    if job["status"] == FAILED and not any(d.get("document_id") for d in job.get("documents", [])):
        vi, en = err.get("message_vi") or "", err.get("message_en") or ""
        return [{"source_name": name, "case_id": job.get("case_id"), "status": "failed", "job_id": job["id"],
                 "error": f"{vi} ({en})", "message_vi": vi, "message_en": en, "exit_code": err.get("exit_code", 1)}]
    out = []
    for d in job.get("documents", []):
        report = {"source_name": name, "case_id": d.get("case_id"), "status": d["status"], "job_id": job["id"],
                  "document_id": d.get("document_id"), "page_count": len(d.get("pages", [])),
                  "mean_confidence": d.get("mean_confidence"), "stored_keys": d.get("links") or {}}
        if d["status"] in ("failed", "refused"):
            report |= {"status": "failed", "error": f"{d.get('message_vi')} ({d.get('message_en')})", "exit_code": 2}
        elif d["status"] == "needs-case-id":
            report |= {"message_vi": "Chưa có mã hồ sơ.", "message_en": "No case ID.", "exit_code": 2}
        elif job["status"] == SPOOLED:
            report |= {"status": "spooled", "error": f"{err.get('message_vi')} ({err.get('message_en')})",
                       "exit_code": 5}
        out.append(report)
    return out
