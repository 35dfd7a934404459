"""Ingesting one document: a scan file (or one dossier of a stack) → stored under its case ID and catalogued.

The ``intake`` flow over whole files and stacks is in flows/desk.py, above this module.

Prefect orchestrates whole documents, never single pages (a task run costs ~50 ms and server
CPU; pages go through the pipeline's own pool). Tasks pass paths and plain dicts, never clients
or image arrays. Only the storage tasks retry, and only on errors a retry can fix.
"""
from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task

from models import (CaseId, DocumentRecord, DocumentReport, PageReport, PageText, SohoaError,
                    StorageUnavailable)
from pipeline import reader
from pipeline.document import PageOutcome, check_pages, document_id_for, process_document, refuse_rescans
from flows.common import failure_report, open_archive, settings
from flows.intake_gate import GATE
from storage import job_events
from storage.archive import DERIVED_ROLES
from flows.spool import spool_scan, spooled_report

STORE_RETRIES = 3
STORE_RETRY_DELAYS = [2, 10, 30]

# OCR progress listeners of this process, by key. A task gets the key (a string), never the
# callable, so its inputs stay plain data; a key nobody registered (another process) means no progress.
_PROGRESS: dict[str, Callable[[int], None]] = {}


def listen_progress(key: str, listener: Callable[[int], None]) -> None:
    """Call ``listener(page_number)`` as each page of the document processed under ``key`` is read."""
    _PROGRESS[key] = listener


def stop_listening(key: str) -> None:
    _PROGRESS.pop(key, None)


def _retry_transient(task, task_run, state) -> bool:
    """Retry only what a retry can fix: an unreachable store, not a corrupt file or a denied write."""
    try:
        state.result()
    except SohoaError as exc:
        return exc.retryable
    except (ConnectionError, TimeoutError, OSError):
        return True
    except Exception:  # noqa: BLE001 - anything unknown: do not hammer, fail and report
        return False
    return False


@dataclass(frozen=True)
class IntakeRequest:
    """One file to ingest and what the counter said about it."""

    path: str
    case_id: str
    kind: str | None = None
    operator: str | None = None
    # One dossier of a stack split by cover sheets: its 1-based page numbers and its own document id
    # (``document_id_for(sha, pages)``); None for a whole file.
    pages: tuple[int, ...] | None = None
    document_id: str | None = None
    # The file's SHA-256 when the caller already hashed it (a stack is hashed once, not per dossier).
    source_sha256: str | None = None
    # A dossier cut from a stack (``path`` then holds only its pages): the stack's SHA-256 and the
    # dossier's page numbers in the stack. Recorded in the manifest and catalog.
    stack_sha256: str | None = None
    stack_pages: tuple[int, ...] | None = None
    # Key of an OCR progress listener registered with ``listen_progress`` (the desk service).
    progress: str | None = None
    # Pages the desk service already read and checked, in order (flows/job_check.py plan_requests): each
    # {"path", "dpi", "dpi_estimated", "width", "height", "verdict"}. Processing reuses them.
    checked: tuple[dict[str, Any], ...] | None = None

    def document_id_for(self, source_sha256: str) -> str:
        """This request's document id: its own, else derived from the file's hash (and pages)."""
        return self.document_id or document_id_for(source_sha256, self.pages)


@task(name="store-original", retries=STORE_RETRIES, retry_delay_seconds=STORE_RETRY_DELAYS,
      retry_condition_fn=_retry_transient)
def store_original(request: IntakeRequest, source_sha256: str) -> dict[str, Any]:
    """Store the untouched original first, so nothing is lost whatever fails later."""
    archive = open_archive()
    path = Path(request.path)
    ext = reader.EXTENSIONS[reader.sniff_format(path)]
    stored = archive.store_original(
        case_id=request.case_id, document_id=request.document_id_for(source_sha256), source_path=path,
        source_name=path.name, ext=ext, operator=request.operator, stack_sha256=request.stack_sha256,
        stack_pages=list(request.stack_pages) if request.stack_pages else None,
    )
    return {"key": stored.key, "sha256": stored.sha256, "size": stored.size}


@task(name="store-stack", retries=STORE_RETRIES, retry_delay_seconds=STORE_RETRY_DELAYS,
      retry_condition_fn=_retry_transient)
def store_stack(path: str, stack_sha256: str, operator: str | None = None) -> dict[str, Any]:
    """Keep a whole stack split by cover sheets once, under ``stacks/``, apart from its cases."""
    source = Path(path)
    ext = reader.EXTENSIONS[reader.sniff_format(source)]
    stored = open_archive().store_stack(stack_sha256=stack_sha256, source_path=source, source_name=source.name,
                                        ext=ext, operator=operator)
    return {"key": stored.key, "sha256": stored.sha256, "size": stored.size}


@task(name="record-stack", retries=STORE_RETRIES, retry_delay_seconds=STORE_RETRY_DELAYS,
      retry_condition_fn=_retry_transient)
def record_stack(stack_sha256: str, key: str, source_name: str, page_count: int,
                 segments: list[dict[str, Any]]) -> None:
    """Write which pages of the stack went to which case (``stacks/<sha>/stack.json``)."""
    open_archive().record_stack(stack_sha256=stack_sha256, key=key, source_name=source_name,
                                page_count=page_count, segments=segments)


@task(name="find-stored")
def find_stored(case_id: str, source_sha256: str, document_id: str | None = None) -> dict[str, Any] | None:
    """The complete record of this file (or of this segment of it) in this case, if ingested before."""
    archive = open_archive()
    if document_id is None:
        rec = archive.is_stored(case_id, source_sha256)
        return rec.to_manifest() if rec else None
    # Several segments of one stack share the file's hash: match the segment's own document id.
    for rec in archive.manifest_records(case_id):
        if rec.document_id == document_id and rec.keys and all(archive.store.exists(k) for k in rec.keys.values()):
            return rec.to_manifest()
    return None


@task(name="check-stored")
def check_stored(case_id: str, document_id: str) -> dict[str, Any]:
    """Is an already stored document whole? Its objects re-read against the manifest, and its catalog row."""
    archive = open_archive()
    # The derived objects are re-read (small); the original is not (it may be large; verify checks it).
    problems = archive.document_problems(case_id, document_id, roles=set(DERIVED_ROLES))
    return {"problems": [{"key": p.key, "problem": p.problem} for p in problems],
            "catalogued": archive.is_catalogued(case_id, document_id)}


@task(name="recatalog", retries=STORE_RETRIES, retry_delay_seconds=STORE_RETRY_DELAYS,
      retry_condition_fn=_retry_transient)
def recatalog(case_id: str, document_id: str) -> None:
    """Put a stored document back into the catalog from its manifest (a crash between manifest and catalog)."""
    open_archive().recatalog(case_id, document_id)


@task(name="process-document")
def process(request: IntakeRequest, source_sha256: str, workdir: str, jobs: int | None,
            strict: bool) -> dict[str, Any]:
    """Read, preflight, clean, OCR and build the searchable PDF/A (no storage here)."""
    result = process_document(
        [Path(request.path)], workdir=Path(workdir), case_id=request.case_id, kind=request.kind,
        operator=request.operator, jobs=jobs, strict=strict, source_sha256=source_sha256,
        source_name=Path(request.path).name, pages=request.pages,
        document_id=request.document_id_for(source_sha256),
        on_ocr_page=_PROGRESS.get(request.progress) if request.progress else None,
        checked=_checked_outcomes(request.checked) if request.checked else None,
    )
    return {"report": result.report.to_dict(), "searchable_pdf": str(result.searchable_pdf),
            "ocr_json": str(result.ocr_json), "page_texts": result.page_texts,
            "dropped_pages": result.dropped_pages}


def _checked_outcomes(checked: tuple[dict[str, Any], ...]) -> list[PageOutcome]:
    """The service's read and checked pages as outcomes, numbered as the document's pages (1, 2, …)."""
    outcomes = []
    for number, c in enumerate(checked, start=1):
        raw = reader.RawPage(number=number, path=Path(c["path"]), dpi=c["dpi"], dpi_estimated=c["dpi_estimated"],
                             width=c["width"], height=c["height"])
        outcomes.append(PageOutcome(raw=raw, report=PageReport.from_dict(dict(c["verdict"]) | {"number": number})))
    return outcomes


@task(name="sign-document")
def sign_document(request: IntakeRequest, processed: dict[str, Any]) -> dict[str, Any]:
    """Extract the key data, issue the result code and sign the searchable PDF in place (flows/signing.py)."""
    from flows.signing import finish_document

    report = processed["report"]
    return finish_document(case_id=request.case_id, document_id=report["document_id"], operator=request.operator,
                           searchable_pdf=Path(processed["searchable_pdf"]), ocr_json=Path(processed["ocr_json"]))


@task(name="store-results", retries=STORE_RETRIES, retry_delay_seconds=STORE_RETRY_DELAYS,
      retry_condition_fn=_retry_transient)
def store_results(request: IntakeRequest, processed: dict[str, Any], original_key: str) -> dict[str, Any]:
    """Upload the searchable PDF and OCR JSON, then record the document in the manifest and catalog."""
    archive = open_archive()
    report = DocumentReport.from_dict(processed["report"])
    keys = {"source": original_key}
    for role, local, ctype in (("searchable_pdf", processed["searchable_pdf"], "application/pdf"),
                               ("ocr_json", processed["ocr_json"], "application/json")):
        stored = archive.store_derived(case_id=request.case_id, document_id=report.document_id, role=role,
                                       path=Path(local), content_type=ctype,
                                       source_sha256=report.source_sha256)
        keys[role] = stored.key
    dropped = set(processed["dropped_pages"])
    kept = [p for p in report.pages if p.number not in dropped]
    record = DocumentRecord(
        case_id=request.case_id, document_id=report.document_id, source_sha256=report.source_sha256,
        source_name=report.source_name, created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        page_count=len(processed["page_texts"]), keys=keys, kind=request.kind, operator=request.operator,
        mean_confidence=report.mean_confidence, stack_sha256=request.stack_sha256,
        preflight=[{"page": n, **issue.to_dict()} for n, issue in report.warnings if n not in dropped],
        stack_pages=list(request.stack_pages) if request.stack_pages else None,
        result_code=(processed.get("finished") or {}).get("result_code"),
        signatures=((processed.get("finished") or {}).get("signing") or {}).get("signatures", []),
        extracted=(processed.get("finished") or {}).get("extracted", []),
        # number = the page of the searchable PDF (what a reader opens); source_page = the page of the
        # scanned file or stack (blank backs dropped and stacks split make them differ).
        pages=[PageText(number=n, text=t, confidence=p.mean_confidence, source_page=p.number)
               for n, (p, t) in enumerate(zip(kept, processed["page_texts"], strict=True), start=1)],
    )
    with GATE.enter(request.path):
        archive.record(record)
        GATE.note(request.path, record.to_manifest())
    for event in ("document.stored", "document.signed") if record.signatures else ("document.stored",):
        job_events.document_changed(archive.catalog.engine, event, record)
    return record.to_manifest()


def ingest_one(request: IntakeRequest, *, work_root: Path, jobs: int | None = None,
               strict: bool = False, spool: bool = True, prechecked: bool = False) -> dict[str, Any]:
    """Ingest one file as one document of its case; returns the report as a dict.

    ``strict`` refuses a page to rescan: preflight's verdicts before anything is stored (unless
    ``prechecked``: the caller ran them), and a page found unreadable by the OCR before the document
    is stored (the original is kept in the store, as for any processing failure).
    """
    path = Path(request.path)
    reader.sniff_format(path)  # refuse empty / unknown files before anything is stored
    sha = request.source_sha256 or reader.sha256_of(path)
    document_id = request.document_id_for(sha)
    if strict and not prechecked:
        # Refuse a page that must be rescanned before anything is stored: the operator rescans now.
        workdir = _claim_workdir(work_root, f"check-{document_id}")
        try:
            refuse_rescans(check_pages([path], workdir=workdir, jobs=jobs, pages=request.pages))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    try:
        segment = request.pages is not None or request.document_id is not None
        existing = find_stored(request.case_id, sha, document_id if segment else None)
    except StorageUnavailable:
        existing = None  # the store is down: store-original retries, then the scan waits in the spool
    healed: list[str] = []
    if existing:
        health = check_stored(request.case_id, existing["document_id"])
        derived = [p for p in health["problems"] if p["key"] != existing["keys"].get("source")]
        if derived:
            # A derived object is missing or altered: build them again from the original (kept as it is).
            healed = [f"{p['problem']}: {p['key']}" for p in derived]
            existing = None
        elif not health["catalogued"]:
            recatalog(request.case_id, existing["document_id"])
            healed = ["catalog"]
    if existing:
        report = DocumentReport(source_name=path.name, source_sha256=sha, document_id=existing["document_id"],
                                case_id=request.case_id, kind=existing.get("kind"),
                                operator=existing.get("operator"), stored_keys=existing["keys"],
                                status="already-stored")
        return report.to_dict() | {"page_count": existing["page_count"],
                                   "mean_confidence": existing.get("mean_confidence"),
                                   "first_lines": _stored_first_lines(request.case_id, existing["document_id"]),
                                   "created_at": existing.get("created_at"), "healed": healed}
    try:
        original = store_original(request, sha)
    except StorageUnavailable as exc:  # still down after the task's retries: keep the scan locally
        if not spool:
            raise
        return _spool(request, sha, exc, original_stored=False)
    workdir = _claim_workdir(work_root, document_id)
    try:
        processed = process(request, sha, str(workdir), jobs, strict)
        processed["finished"] = sign_document(request, processed)
        try:
            record = store_results(request, processed, original["key"])
        except StorageUnavailable as exc:  # the original is stored; sending the spooled scan finishes it
            if not spool:
                raise
            return _spool(request, sha, exc, original_stored=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report = DocumentReport.from_dict(processed["report"])
    report.stored_keys = record["keys"]
    report.status = "stored"
    finished = processed["finished"]
    return report.to_dict() | {"page_count": record["page_count"],
                               "first_lines": _first_lines(processed["page_texts"]), "healed": healed,
                               "result_code": finished["result_code"], "signing": finished["signing"],
                               "extracted": finished["extracted"]}


def _stored_first_lines(case_id: str, document_id: str) -> list[str]:
    """The first lines of an already stored document, from the catalog."""
    try:
        for rec in open_archive().catalog.documents_for_case(case_id, with_pages=True):
            if rec.document_id == document_id:
                return _first_lines([p.text for p in rec.pages])
    except SohoaError:
        pass
    return []


def _claim_workdir(work_root: Path, name: str) -> Path:
    """A work folder of this run only: two scans of the same file at once never share (or delete) one;
    folders of killed runs are swept (flows/workdirs.py)."""
    from flows.workdirs import claim

    return claim(work_root, name)


def _spool(request: IntakeRequest, sha: str, exc: StorageUnavailable, *, original_stored: bool) -> dict[str, Any]:
    """Keep the whole scan file in the local spool; ``drain_spool`` runs its intake again later."""
    job = spool_scan(Path(request.path), sha256=sha, case_id=request.case_id, kind=request.kind,
                     operator=request.operator, reason=exc, pages=request.pages,
                     document_id=(request.document_id_for(sha)
                                  if request.pages is not None or request.document_id else None),
                     stack_sha256=request.stack_sha256, stack_pages=request.stack_pages)
    return spooled_report(job, exc, original_stored=original_stored) | {"document_id": request.document_id_for(sha)}


def _first_lines(texts: list[str], n: int = 5) -> list[str]:
    lines = [ln.strip() for t in texts for ln in t.splitlines() if ln.strip()]
    return lines[:n]


@flow(name="intake-request", log_prints=False)
def intake_request(path: str, case_id: str, kind: str | None = None, operator: str | None = None,
                   pages: list[int] | None = None, document_id: str | None = None,
                   jobs: int | None = None, stack_sha256: str | None = None,
                   stack_pages: list[int] | None = None) -> dict[str, Any]:
    """Ingest exactly one request again (a spooled whole file, or one dossier of a split stack)."""
    request = IntakeRequest(path=path, case_id=str(CaseId.parse(case_id)), kind=kind, operator=operator,
                            pages=tuple(pages) if pages is not None else None, document_id=document_id,
                            stack_sha256=stack_sha256, stack_pages=tuple(stack_pages) if stack_pages else None)
    try:
        return ingest_one(request, work_root=settings().data_dir / "work", jobs=jobs)
    except SohoaError as exc:
        return failure_report(Path(path).name, request.case_id, exc)


@flow(name="heal-documents", log_prints=False)
def heal_documents(problems: list[dict[str, Any]], uncatalogued: list[list[str]],
                   jobs: int | None = None) -> list[dict[str, Any]]:
    """``sohoa verify --repair``: rebuild missing/altered derived objects from the stored original, recatalog.

    An original that is missing or altered cannot be rebuilt from the store; it is reported (the
    scan itself, ingested again, or the object store's older version is the way back).
    """
    import tempfile

    from pipeline.document import document_id_for

    archive = open_archive()
    out: list[dict[str, Any]] = []
    by_doc: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in problems:
        if p.get("document_id"):
            by_doc.setdefault((p["case_id"], p["document_id"]), []).append(p)
    work_root = settings().data_dir / "work"
    work_root.mkdir(parents=True, exist_ok=True)
    for (case, doc), probs in by_doc.items():
        rec = next((r for r in archive.manifest_records(case) if r.document_id == doc), None)
        if rec is None:
            continue
        if any(p["key"] == rec.keys.get("source") for p in probs):
            out.append({"case_id": case, "document_id": doc, "ok": False,
                        "message": "bản gốc bị thiếu hoặc bị thay đổi, không thể dựng lại từ kho; hãy nạp lại bản "
                                   "quét (the original is missing or altered and cannot be rebuilt from the store; "
                                   "ingest the scan again)"})
            continue
        if not rec.stack_sha256 and rec.document_id != document_id_for(rec.source_sha256):
            out.append({"case_id": case, "document_id": doc, "ok": False,
                        "message": "bản gốc là cả xấp nhiều hồ sơ: chạy 'sohoa repair-stacks' trước "
                                   "(the original is a whole stack: run 'sohoa repair-stacks' first)"})
            continue
        with tempfile.TemporaryDirectory(prefix="heal-", dir=work_root) as tmp:
            source = Path(tmp) / (Path(rec.source_name).name or f"source{Path(rec.keys['source']).suffix}")
            archive.store.get_file(rec.keys["source"], source)
            request = IntakeRequest(path=str(source), case_id=case, kind=rec.kind, operator=rec.operator,
                                    document_id=rec.document_id, source_sha256=rec.source_sha256,
                                    stack_sha256=rec.stack_sha256,
                                    stack_pages=tuple(rec.stack_pages) if rec.stack_pages else None)
            try:
                report = ingest_one(request, work_root=work_root, jobs=jobs, spool=False)
            except SohoaError as exc:
                out.append({"case_id": case, "document_id": doc, "ok": False, "message": exc.user_message()})
                continue
        keys = ", ".join(p["key"].rsplit("/", 1)[-1] for p in probs)
        out.append({"case_id": case, "document_id": doc, "ok": report.get("status") == "stored",
                    "message": f"đã dựng lại {keys} từ bản gốc (rebuilt {keys} from the original)"})
    for case, doc in uncatalogued:
        if (case, doc) in by_doc:
            continue  # rebuilt above, which catalogued it again
        archive.recatalog(case, doc)
        out.append({"case_id": case, "document_id": doc, "ok": archive.is_catalogued(case, doc),
                    "message": "đã đưa lại vào danh mục tìm kiếm (put back into the search catalog)"})
    return out


@flow(name="intake-job", log_prints=False)
def intake_job(job_id: str, requests: list[dict[str, Any]], jobs: int | None = None) -> list[dict[str, Any]]:
    """Store the documents of one desk scan job (flows/service.py checked its pages already).

    One report per request, in order. A request with a ``stack`` (a dossier of a stack split by
    cover sheets) gets an original of its own pages only, cut losslessly, and the whole stack is
    kept once under ``stacks/`` with the record of which pages went where, as ``sohoa scan`` does.
    A document the scan itself makes impossible is reported ``failed``; a store that stays down
    raises ``StorageUnavailable`` so the service keeps the job and sends it later.
    """
    from pipeline.extract import extension_of_extract, extract_pages

    logger = get_run_logger()
    work_root = settings().data_dir / "work"
    parts = work_root / f"job-{job_id}-parts"
    stacks: dict[str, dict[str, Any]] = {}
    results: list[dict[str, Any]] = []
    try:
        for r in requests:
            case = str(CaseId.parse(r["case_id"]))
            stack = r.get("stack")
            checked = tuple(r["checked"]) if r.get("checked") else None
            try:
                if stack:
                    source, sha, numbers = Path(stack["path"]), stack["sha256"], tuple(stack["pages"])
                    if sha not in stacks:
                        stacks[sha] = {"key": store_stack(str(source), sha, r.get("operator"))["key"],
                                       "name": source.name, "page_count": stack["page_count"], "segments": []}
                    span = f"{numbers[0]}-{numbers[-1]}" if len(numbers) > 1 else str(numbers[0])
                    part = extract_pages(source, numbers,
                                         parts / f"{source.stem}.p{span}.{extension_of_extract(source)}")
                    request = IntakeRequest(path=str(part), case_id=case, kind=r.get("kind"),
                                            operator=r.get("operator"), document_id=document_id_for(sha, numbers),
                                            stack_sha256=sha, stack_pages=numbers, progress=r.get("progress"),
                                            checked=checked)
                else:
                    request = IntakeRequest(path=r["path"], case_id=case, kind=r.get("kind"),
                                            operator=r.get("operator"), source_sha256=r.get("source_sha256"),
                                            progress=r.get("progress"), checked=checked)
                report = ingest_one(request, work_root=work_root, jobs=jobs, spool=False)
            except StorageUnavailable:
                raise
            except SohoaError as exc:
                report = failure_report(Path((stack or r)["path"]).name, case, exc)
            if stack and report.get("status") in ("stored", "already-stored"):
                stacks[stack["sha256"]]["segments"].append(
                    {"case_id": case, "document_id": report.get("document_id"), "pages": list(stack["pages"]),
                     "source_sha256": report.get("source_sha256")})
            logger.info("job %s: %s as %s/%s", job_id, report.get("status"), case, report.get("document_id"))
            results.append(report)
        for sha, st in stacks.items():
            if st["segments"]:
                record_stack(sha, st["key"], st["name"], st["page_count"], st["segments"])
    finally:
        shutil.rmtree(parts, ignore_errors=True)
    return results
