"""The scanning desk in the browser and its API: upload scans, follow each page's verdict, store the dossier.

``POST /api/v1/cases/{case}/scans`` streams a multipart upload straight to the job folder, hashing
each file as it arrives (nothing is held in memory, the size limit is checked while streaming), and
answers 202 with the job's URL; the intake service (started with the app, flows/service.py) checks
the pages at once and stores the dossier. Every route goes through the app's one access dependency
(``web.deps.Guard``): uploading and changing a job is ``Action.UPLOAD`` on the job's case, reading a
job is ``Action.VIEW_CASE`` — so who may see and change a job is the policy's answer for its case,
and every request is in the audit trail.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from models import CaseId, EmptyFile, InvalidCaseId, JobConflict, NotFound, SohoaError, UploadTooLarge
from models.clock import day_start, local_time, local_today
from models.jobs import ON_RESCAN, ScanJob
from models.policy import Action, Role, decide
from storage.job_pages import replace_page as replace_job_page
from storage.jobs import JobStore, valid_job_id
from storage.uploads import Upload
from web.templating import templates
from web.deps import CsrfNotInHeader, Ctx, Guard, guard

router = APIRouter(tags=["desk"])
log = logging.getLogger("sohoa.web.desk")
FIELD_LIMIT = 4096  # bytes of a plain form field (kind, case…)
MAX_FIELDS = 32  # plain fields of one upload (the desk sends three)
HEADER_LIMIT = 8192  # bytes of one part's headers
KIND_LIMIT = 64  # characters of a document kind (the catalog's column)


class MalformedUpload(SohoaError):
    """A multipart body that cannot be read as scans and fields (HTTP 400)."""

    def __init__(self) -> None:
        super().__init__("The upload is not a well-formed multipart form; send each scan as a file field.",
                         "Lượt tải lên không đúng dạng biểu mẫu nhiều phần; hãy gửi mỗi bản quét là một trường tệp.")


class TooManyFields(SohoaError):
    """More plain form fields than an upload needs (HTTP 413: a body of fields must not escape the limit)."""

    def __init__(self) -> None:
        super().__init__(f"The upload holds more than {MAX_FIELDS} form fields; send the scans with at most "
                         "the kind, on_rescan and review_split fields.",
                         f"Lượt tải lên có quá {MAX_FIELDS} trường biểu mẫu; chỉ gửi bản quét kèm các trường "
                         "kind, on_rescan và review_split.")


class KindTooLong(SohoaError):
    """A document kind longer than the catalog keeps (HTTP 422)."""

    def __init__(self, length: int) -> None:
        super().__init__(f"The document kind has {length} characters, over the limit of {KIND_LIMIT}.",
                         f"Loại giấy tờ dài {length} ký tự, vượt giới hạn {KIND_LIMIT} ký tự.")
EVENT_POLL_SECONDS = 0.25  # how often a followed job is looked at (the database is the only shared state)
STREAM_SECONDS = 600.0  # an event stream ends after this; the browser's EventSource reconnects


def job_store(request: Request) -> JobStore:
    return request.app.state.jobs


def _wake(request: Request) -> None:
    service = getattr(request.app.state, "intake", None)
    if service is not None:
        service.wake()


# ------------------------------------------------------------------------------ streaming multipart
class _Receiver:
    """Callbacks of the streaming multipart parser: file parts go to the upload, small fields to a dict."""

    def __init__(self, upload: Upload, *, max_files: int = 200) -> None:
        self.upload = upload
        self.fields: dict[str, str] = {}
        self.max_files = max_files
        self._header_field = b""
        self._header_value = b""
        self._headers: dict[bytes, bytes] = {}
        self._file = None
        self._named = False  # the file part has a file name (an empty file input sends filename="")
        self._field_name: str | None = None
        self._field_value = bytearray()
        self.error: Exception | None = None
        self.parts = 0

    def callbacks(self) -> dict[str, Any]:
        return {"on_part_begin": self._begin, "on_header_field": self._hfield, "on_header_value": self._hvalue,
                "on_header_end": self._hend, "on_headers_finished": self._hdone, "on_part_data": self._data,
                "on_part_end": self._end}

    def _begin(self) -> None:
        self._headers, self._header_field, self._header_value = {}, b"", b""
        self._header_bytes = 0
        # Every part counts, kept or not: empty file parts and fields must not be free.
        self.parts += 1
        if self.parts > self.max_files + MAX_FIELDS:
            raise TooManyFields()

    def _spend(self, n: int) -> None:
        """Count bytes that are not a file's against the same budget as the files."""
        self.upload.total += n
        if self.upload.total > self.upload.limit:
            raise UploadTooLarge(None, self.upload.limit)

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._header(end - start)
        self._header_field += data[start:end]

    def _hvalue(self, data: bytes, start: int, end: int) -> None:
        self._header(end - start)
        self._header_value += data[start:end]

    def _header(self, n: int) -> None:
        self._header_bytes += n
        if self._header_bytes > HEADER_LIMIT:
            raise MalformedUpload()
        self._spend(n)

    def _hend(self) -> None:
        self._headers[self._header_field.lower()] = self._header_value
        self._header_field, self._header_value = b"", b""

    def _hdone(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        name = params.get(b"name", b"").decode("utf-8", "replace")
        filename = params.get(b"filename")
        if filename is not None:
            if len(self.upload.files) >= self.max_files:
                raise JobConflict("Too many files in one upload.", "Quá nhiều tệp trong một lần tải lên.")
            self._file = self.upload.open_file(filename.decode("utf-8", "replace"))
            self._named = bool(filename)
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise TooManyFields()
            self._field_name, self._field_value = name, bytearray()

    def _data(self, data: bytes, start: int, end: int) -> None:
        if self._file is not None:
            self._file.write(data[start:end])
        elif self._field_name is not None:
            self._spend(end - start)
            self._field_value += data[start:end]
            if len(self._field_value) > FIELD_LIMIT:
                raise JobConflict("A form field is too long.", "Một trường của biểu mẫu quá dài.")

    def _end(self) -> None:
        if self._file is not None:
            if self._file.size:
                self._file.close()
            else:
                self._file.discard()  # an empty file input ("no file chosen") is not a scan
                if self._named:
                    self.upload.empty.append(self._file.name)
            self._file = None
        elif self._field_name is not None:
            self.fields[self._field_name] = self._field_value.decode("utf-8", "replace")
            self._field_name = None


async def receive_files(request: Request, upload: Upload) -> dict[str, str]:
    """Stream the multipart body of ``request`` into ``upload``; returns the plain fields."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise HTTPException(415, "send the scans as multipart/form-data")
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > upload.limit + 1024 * 1024:
        raise UploadTooLarge(None, upload.limit)
    receiver = _Receiver(upload)
    parser = MultipartParser(boundary, receiver.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except ClientDisconnect:  # a tab closed mid-upload: one line, not a traceback; nothing is kept
        log.warning("upload cut off: the client closed the connection after %d bytes (%s)",
                    upload.total + (receiver._file.size if receiver._file else 0), request.url.path)  # noqa: SLF001
        raise HTTPException(400, "the client closed the connection during the upload") from None
    except MultipartParseError:  # e.g. a file name holding a bare CR LF: a broken form, not our fault
        raise MalformedUpload() from None
    if receiver._file is not None:  # noqa: SLF001 - the body ended inside a file: the upload is incomplete
        raise HTTPException(400, "the upload ended before its last file was complete")
    if not upload.files and upload.empty:  # a file was chosen but it has no byte: say so
        raise EmptyFile(upload.empty[0])
    return receiver.fields


def _refusal(exc: SohoaError) -> JSONResponse:
    status = 413 if isinstance(exc, (UploadTooLarge, TooManyFields)) else 400 if isinstance(exc, MalformedUpload) \
        else 409 if isinstance(exc, JobConflict) else 404 if isinstance(exc, NotFound) else 422
    return JSONResponse({"detail": exc.message_en, "message_vi": exc.message_vi, "message_en": exc.message_en},
                        status_code=status)


# ------------------------------------------------------------------------------ jobs as JSON
# An absolute path (a library's message often starts with the file's full path): only its last part is shown.
_ABS_PATH = re.compile(r"(?<![\w.~:/-])(?:file://)?/(?:[^\s/'\"()<>:,;]+/)+([^\s/'\"()<>:,;]+)")


def no_paths(text: str) -> str:
    """``text`` with every server path reduced to the file's name (clients never see the server's folders)."""
    return _ABS_PATH.sub(r"\1", text)


def job_json(job: ScanJob) -> dict[str, Any]:
    """A job for the API and the desk page, with the URLs of its thumbnails and stored PDFs."""
    base = f"/api/v1/jobs/{job.id}"
    d = job.to_dict()
    d.pop("files", None)
    d["files"] = [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in job.files]
    for page, out in zip(job.pages, d["pages"], strict=True):
        out.pop("file", None)
        out["thumbnail"] = f"{base}/pages/{page.number}/thumbnail.jpg?v={page.version}" if page.thumbnail else None
    for doc in d["documents"]:
        report = doc.pop("report", None) or {}
        doc["message_vi"], doc["message_en"] = report.get("message_vi"), report.get("message_en")
        doc["mean_confidence"] = report.get("mean_confidence")
        if doc.get("document_id") and doc["status"] in ("stored", "already-stored"):
            doc_url = f"/api/v1/cases/{doc['case_id']}/documents/{doc['document_id']}"
            doc["links"] = {"page": f"/cases/{doc['case_id']}/documents/{doc['document_id']}",
                            "searchable_pdf": f"{doc_url}/searchable.pdf", "document": doc_url}
    if d.get("error"):
        d["error"] = {k: no_paths(v) if isinstance(v, str) else v
                      for k, v in d["error"].items() if k != "detail"}  # internals stay in the server log
    for doc in d["documents"]:
        for k in ("message_vi", "message_en"):
            if isinstance(doc.get(k), str):
                doc[k] = no_paths(doc[k])
    d["links"] = {"self": base, "events": f"{base}/events", "store": f"{base}/store"}
    d["created"] = local_time(job.created_at).isoformat(timespec="seconds")  # Vietnam time, as the desk shows it
    return d


class JobGuard:
    """The app's ``Guard`` applied to a job: the job's case is the case the policy decides on."""

    def __init__(self, action: Action, *, audit_allowed: bool = True) -> None:
        self.guard = Guard(action, audit_allowed=audit_allowed)

    async def __call__(self, request: Request, job: str) -> tuple[Ctx, ScanJob]:
        try:
            found = await run_in_threadpool(job_store(request).get, valid_job_id(job))
        except NotFound:
            found = None
        # An unknown job and a job of another unit answer the same (the Guard audits the refusal).
        stack_unit = found.agency if found is not None and not found.case_id and found.agency else None
        if stack_unit:  # a stack uploaded to a unit
            request.scope["path_params"] = {**request.path_params, "unit": stack_unit}
        else:
            case = found.case_id if found is not None and found.case_id else "-"
            request.scope["path_params"] = {**request.path_params, "case": case}
        try:
            ctx = await self.guard(request)
        except HTTPException as exc:
            # Changing another unit's job is refused as if it did not exist (403 would say it does);
            # a 403 stays for someone who may see the job but not change it (the Guard audited both).
            principal = getattr(request.state, "principal", None)
            seen = decide(principal, Action.VIEW_CASE, unit=stack_unit) if stack_unit else \
                decide(principal, Action.VIEW_CASE, case_id=found.case_id if found else None)
            if exc.status_code == 403 and principal is not None and not isinstance(exc, CsrfNotInHeader) \
                    and not seen.allowed:
                raise HTTPException(404, "not found") from None
            raise
        if found is None:
            raise HTTPException(404, "not found")
        return ctx, found


JobRead = Annotated[tuple, Depends(JobGuard(Action.VIEW_CASE))]
JobWrite = Annotated[tuple, Depends(JobGuard(Action.UPLOAD))]
# A page's thumbnail is part of the job the desk shows: that read is the recorded one (one row, not one
# per thumbnail); a refused thumbnail is still recorded.
JobThumbnail = Annotated[tuple, Depends(JobGuard(Action.VIEW_CASE, audit_allowed=False))]


# ------------------------------------------------------------------------------ API
@router.post("/api/v1/cases/{case}/scans", status_code=202,
             summary="Upload scans to a case (operators, write scope): multipart, streamed; 202 with the job URL")
async def upload_scans(ctx: Annotated[Ctx, guard(Action.UPLOAD)], request: Request,
                       kind: Annotated[str | None, Query()] = None,
                       on_rescan: Annotated[str, Query(pattern="^(hold|store|refuse)$")] = "store",
                       review_split: bool = False) -> Response:
    return await _upload(ctx, request, kind, on_rescan, review_split)


@router.post("/api/v1/scans", status_code=202,
             summary="Upload a stack with cover sheets to a unit (?unit=…, operators, write scope): the cover "
                     "sheets' QR codes name the cases; 202 with the job URL")
async def upload_stack(ctx: Annotated[Ctx, guard(Action.UPLOAD)], request: Request,
                       unit: Annotated[str, Query(max_length=16)],
                       kind: Annotated[str | None, Query(max_length=64)] = None,
                       on_rescan: Annotated[str, Query(pattern="^(hold|store|refuse)$")] = "store",
                       review_split: bool = False) -> Response:
    return await _upload(ctx, request, kind, on_rescan, review_split)


async def _upload(ctx: Ctx, request: Request, kind: str | None, on_rescan: str, review_split: bool) -> Response:
    store = job_store(request)
    principal = ctx.principal
    try:
        with store.upload() as up:
            fields = await receive_files(request, up)
            if not up.files:
                raise JobConflict("No scan file in the upload.", "Chưa chọn tệp bản quét nào.")
            options = {"kind": fields.get("kind") or kind, "on_rescan": fields.get("on_rescan") or on_rescan,
                       "review_split": fields.get("review_split", str(review_split)).lower() in ("1", "true", "on")}
            if options["kind"] and len(options["kind"]) > KIND_LIMIT:
                raise KindTooLong(len(options["kind"]))
            if options["on_rescan"] not in ON_RESCAN:
                raise JobConflict("on_rescan is hold, store or refuse.", "on_rescan phải là hold, store hoặc refuse.")
            operator = ctx.operator
            job = await run_in_threadpool(
                store.commit, up, case_id=ctx.case_id, operator=operator, kind=(options["kind"] or None),
                origin="desk" if ctx.session else "api", on_rescan=options["on_rescan"],
                review_split=options["review_split"], units=sorted(principal.units), unit=ctx.unit)
    except SohoaError as exc:
        await run_in_threadpool(ctx.audit, Action.UPLOAD, "refused", detail=f"upload refused: {exc.message_en}"[:500])
        return _refusal(exc)
    _wake(request)
    files = ", ".join(f"{f.name} ({f.size} B, sha256 {f.sha256[:16]}…)" for f in job.files)
    await run_in_threadpool(ctx.audit, Action.UPLOAD, "allowed", detail=f"job {job.id}: {files}"[:500])
    url = f"/api/v1/jobs/{job.id}"
    return JSONResponse({"job_id": job.id, "status": job.status, "links": {"self": url}}, status_code=202,
                        headers={"Location": url})


@router.get("/api/v1/jobs/{job}", summary="A scan job: page verdicts, split, OCR progress, stored documents")
def get_job(guarded: JobRead, request: Request) -> dict[str, Any]:
    _ctx, job = guarded
    return job_json(job_store(request).require(job.id))


@router.get("/api/v1/jobs/{job}/events", summary="The job pushed as server-sent events (event 'job') until it ends")
async def job_events(guarded: JobRead, request: Request) -> Response:
    """One request (and one audit entry) for a page that follows a job, instead of a poll every half second."""
    _ctx, job = guarded
    store = job_store(request)

    async def stream():  # type: ignore[no-untyped-def]
        last = None
        deadline = time.monotonic() + STREAM_SECONDS
        yield "retry: 1000\n\n"
        while time.monotonic() < deadline and not await request.is_disconnected():
            current = await run_in_threadpool(store.require, job.id)
            data = json.dumps(job_json(current), ensure_ascii=False)
            if data != last:
                last = data
                yield f"event: job\ndata: {data}\n\n"
            if current.final:
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(EVENT_POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/api/v1/jobs/{job}/pages/{number}/thumbnail.jpg", include_in_schema=False)
def page_thumbnail(guarded: JobThumbnail, request: Request, number: int) -> Response:
    _ctx, job = guarded
    page = next((p for p in job.pages if p.number == number and p.thumbnail), None)
    if page is None:
        raise HTTPException(404, "not found")
    path = job_store(request).path_of(job.id, page.thumbnail)  # type: ignore[arg-type]
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.post("/api/v1/jobs/{job}/pages/{number}", summary="Replace one page with a rescan (one page file)")
async def replace_page(guarded: JobWrite, request: Request, number: int) -> Response:
    ctx, job = guarded
    store = job_store(request)
    try:
        with store.upload() as up:
            await receive_files(request, up)
            updated = await run_in_threadpool(replace_job_page, store, job.id, number, up)
    except SohoaError as exc:
        return _refusal(exc)
    _wake(request)
    await run_in_threadpool(ctx.audit, Action.UPLOAD, "allowed", detail=f"job {job.id}: page {number} replaced")
    return JSONResponse(job_json(updated), status_code=202)


@router.post("/api/v1/jobs/{job}/store", summary="Store a job that waits for the operator (as it is)")
async def store_job(guarded: JobWrite, request: Request) -> Response:
    ctx, job = guarded
    try:
        updated = await run_in_threadpool(job_store(request).confirm, job.id)
    except SohoaError as exc:
        return _refusal(exc)
    _wake(request)
    await run_in_threadpool(ctx.audit, Action.UPLOAD, "allowed", detail=f"job {job.id}: store confirmed")
    return JSONResponse(job_json(updated), status_code=202)


@router.get("/api/v1/desk/today", summary="What this operator received today, with statuses")
def today(ctx: Annotated[Ctx, guard(Action.LIST_CASES)], request: Request) -> dict[str, Any]:
    store = job_store(request)
    day = local_today()
    operator = ctx.operator
    jobs = store.list_jobs(operator=operator, since=day_start(day), agencies=ctx.principal.units)
    return {"jobs": [job_json(j) | {"pages": [], "page_count": None} for j in jobs],
            "receipts": store.todays_cases(units=ctx.principal.units, day=day)}


# ------------------------------------------------------------------------------ pages
@router.get("/desk", response_class=HTMLResponse, include_in_schema=False)
def desk_page(ctx: Annotated[Ctx, guard(Action.LIST_CASES)]) -> HTMLResponse:
    return templates.TemplateResponse(ctx.request, "desk.html", {
        "principal": ctx.principal, "csrf": ctx.csrf, "units": sorted(ctx.principal.units),
        "is_operator": Role.OPERATOR in ctx.principal.roles, "reuse": ctx.request.query_params.get("reuse", ""),
        "limit_mb": job_store(ctx.request).upload_limit // (1024 * 1024)})


@router.get("/desk/coversheets.pdf", include_in_schema=False)
def coversheets(ctx: Annotated[Ctx, guard(Action.LIST_CASES)],
                case: Annotated[list[str], Query(max_length=64)]) -> Response:
    from models.policy import decide
    from pipeline.qr import write_coversheets

    from web.errors import error_page

    try:
        ids = [CaseId.parse(c.strip()) for c in case if c.strip()][:100]
    except InvalidCaseId as exc:  # the sentence of ``sohoa scan``, not a bare status code
        return error_page(ctx.request, 422, message=(exc.message_vi, exc.message_en))
    if not ids or any(not decide(ctx.principal, Action.UPLOAD, case_id=str(c)).allowed for c in ids):
        raise HTTPException(403, "forbidden")
    with tempfile.TemporaryDirectory(prefix="sohoa-sheets-") as tmp:
        out = write_coversheets(ids, Path(tmp) / "to-bia.pdf")
        data = out.read_bytes()
    return Response(data, media_type="application/pdf",
                    headers={"Content-Disposition": 'inline; filename="to-bia.pdf"', "X-Sohoa-Framable": "1"})


# ------------------------------------------------------------------------------ the app's intake service
def install(app: Any) -> None:
    """Give the app its job store; ``start``/``stop`` run an intake service in this process (lifespan)."""
    from flows.service import open_job_store

    app.state.jobs = open_job_store(app.state.services.settings)
    app.state.intake = None


def start(app: Any) -> None:
    """Start the intake service inside the web app, unless SOHOA_INTAKE_SERVICE=0 (then another process runs it)."""
    import os

    if (os.environ.get("SOHOA_INTAKE_SERVICE") or "1").strip().lower() in ("0", "false", "no", "off"):
        return
    from flows.service import IntakeService

    workers = int(os.environ.get("SOHOA_INTAKE_WORKERS") or 2)
    app.state.intake = IntakeService(config=app.state.services.settings, workers=workers).start()


def stop(app: Any) -> None:
    service = getattr(app.state, "intake", None)
    if service is not None:
        service.stop(wait=False)
        app.state.intake = None
