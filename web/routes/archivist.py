"""The archivist's pages (Vietnamese first): records due, disposal lists and approvals, exports, metadata editor.

Every route goes through the one guard (policy, CSRF, audit). Archivists edit records, put holds,
propose disposal lists and export packages; approvers (a different person) approve or reject lists.
Export jobs run in a thread of this process and write their progress to ``exports/<job>/progress.json``
under the data folder, which the job page (refreshing itself) reads.
"""
from __future__ import annotations

import datetime as dt
import json
import secrets
import threading
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from models import NotFound, SohoaError
from models.policy import Action
from models.record import CASE_FIELDS, DOCUMENT_FIELDS, EDITABLE_CASE, EDITABLE_DOCUMENT, EXTRA_CASE_FIELDS
from storage.archive import Archive
from storage.disposal import Disposals
from web.errors import error_page
from web.templating import templates
from web.deps import Ctx, client_of, guard

router = APIRouter(include_in_schema=False)
_JOB = "abcdefghijklmnopqrstuvwxyz0123456789"


def _book(ctx: Ctx):  # type: ignore[no-untyped-def]
    from flows.transfer import open_book

    return open_book(Archive(ctx.services.store, ctx.services.catalog), ctx.services.settings.data_dir)


def _unit_or_default(ctx: Ctx, request: Request) -> str | None:
    return ctx.unit or (min(ctx.principal.units) if ctx.principal.units else None)


def _render(ctx: Ctx, name: str, **values) -> Response:  # type: ignore[no-untyped-def]
    return templates.TemplateResponse(ctx.request, name, {"principal": ctx.principal, "csrf": ctx.csrf, **values})


def _exports_dir(ctx: Ctx) -> Path:
    return ctx.services.settings.data_dir / "exports"


@router.get("/archivist", response_class=HTMLResponse)
def archivist_home(ctx: Annotated[Ctx, guard(Action.LIST_CASES)], request: Request, message: str = "") -> Response:
    unit = _unit_or_default(ctx, request)
    if ctx.unit is None and unit:
        return RedirectResponse(f"/archivist?unit={unit}", status_code=303)
    archivist, approver = ctx.may(Action.MANAGE_RECORDS), ctx.may(Action.APPROVE_DISPOSAL)
    if not (archivist or approver):
        ctx.require(Action.MANAGE_RECORDS)  # audited refusal, 403
    book = _book(ctx)
    due = book.due(before=dt.date.today(), units=[unit])
    lists = [p for p in Disposals(book, ctx.services.store, book.audit).list()
             if all(c.startswith(f"{unit}-") for c in p.case_ids)]
    return _render(ctx, "archivist.html", unit=unit, due=due, proposals=lists, archivist=archivist,
                   approver=approver, message=message, today=dt.date.today().isoformat())


def _form_error(ctx: Ctx, exc: SohoaError) -> Response:
    """Bad input or a refused step: the page says what is wrong in one sentence (400); nothing changed."""
    return error_page(ctx.request, 400,
                      message=(exc.message_vi, exc.message_en if exc.message_en != exc.message_vi else ""))


@router.post("/archivist/propose")
async def propose(ctx: Annotated[Ctx, guard(Action.MANAGE_RECORDS)], request: Request) -> Response:
    form = await request.form()
    cases = [str(c) for c in form.getlist("case")]
    book = _book(ctx)
    try:
        p = Disposals(book, ctx.services.store, book.audit).propose(ctx.principal, cases,
                                                                    reason=str(form.get("reason") or ""))
    except SohoaError as exc:
        return _form_error(ctx, exc)
    return RedirectResponse(f"/archivist?unit={ctx.unit}&message=Đã lập danh sách hủy số {p.id}", status_code=303)


@router.post("/archivist/proposals/{number}/{verdict}")
async def decide_list(ctx: Annotated[Ctx, guard(Action.APPROVE_DISPOSAL)], request: Request, number: int,
                      verdict: str) -> Response:
    form = await request.form()
    book = _book(ctx)
    disposals = Disposals(book, ctx.services.store, book.audit)
    try:
        if verdict == "approve":
            try:
                day = dt.date.fromisoformat(str(form.get("decision_date") or ""))
            except ValueError:
                raise HTTPException(status_code=400, detail="Ngày quyết định phải có dạng NNNN-TT-NN.") from None
            disposals.approve(ctx.principal, number, decision_number=str(form.get("decision_number") or ""),
                              decision_date=day)
            message = f"Đã duyệt và hủy danh sách số {number}"
        elif verdict == "reject":
            disposals.reject(ctx.principal, number, reason=str(form.get("reason") or ""))
            message = f"Đã không duyệt danh sách số {number}"
        else:
            raise HTTPException(status_code=404)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail="not found") from exc
    except SohoaError as exc:
        return _form_error(ctx, exc)
    return RedirectResponse(f"/archivist?unit={ctx.unit}&message={message}", status_code=303)


@router.get("/archivist/records/{case}", response_class=HTMLResponse)
def record_page(ctx: Annotated[Ctx, guard(Action.MANAGE_RECORDS)], message: str = "") -> Response:
    try:
        rec = _book(ctx).record(ctx.case_id)  # type: ignore[arg-type]
    except NotFound as exc:
        raise HTTPException(status_code=404, detail="not found") from exc
    labels = {**CASE_FIELDS, **EXTRA_CASE_FIELDS}
    return _render(ctx, "record_edit.html", rec=rec, labels=labels, doc_labels=DOCUMENT_FIELDS,
                   editable=[n for n in labels if n in EDITABLE_CASE], doc_editable=EDITABLE_DOCUMENT,
                   message=message)


@router.post("/archivist/records/{case}")
async def record_save(ctx: Annotated[Ctx, guard(Action.MANAGE_RECORDS)], request: Request) -> Response:
    form = await request.form()
    book = _book(ctx)
    case_id = ctx.case_id or ""
    try:
        before = book.record(case_id)
        changes = {}
        for name in EDITABLE_CASE:
            if name in form:
                value = str(form.get(name) or "").strip()
                old = getattr(before, name)
                old_text = "; ".join(old) if isinstance(old, list) else ("" if old is None else str(old))
                if value != old_text:
                    changes[name] = value or None
        if changes:
            book.edit(case_id, changes, actor=ctx.principal.actor, client=client_of(request))
        for doc in before.documents:
            doc_changes = {}
            for name in EDITABLE_DOCUMENT:
                key = f"doc:{doc.document_id}:{name}"
                if key in form:
                    value = str(form.get(key) or "").strip()
                    if value != ("" if getattr(doc, name) is None else str(getattr(doc, name))):
                        doc_changes[name] = value or None
            if doc_changes:
                book.edit_document(case_id, doc.document_id, doc_changes, actor=ctx.principal.actor,
                                   client=client_of(request))
        hold = str(form.get("legal_hold") or "").strip() or None
        if hold != before.legal_hold:
            book.set_hold(case_id, hold, actor=ctx.principal.actor)
    except NotFound as exc:
        raise HTTPException(status_code=404, detail="not found") from exc
    except SohoaError as exc:
        return _form_error(ctx, exc)
    return RedirectResponse(f"/archivist/records/{case_id}?message=Đã lưu", status_code=303)


def _run_export(services, case_ids: list[str], folder: Path, actor: str) -> None:  # type: ignore[no-untyped-def]
    from flows.transfer import export_records, open_book

    progress = folder / "progress.json"

    def write(state: dict) -> None:
        tmp = progress.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, ensure_ascii=False), encoding="utf-8")
        tmp.replace(progress)

    archive = Archive(services.store, services.catalog)
    state = {"total": len(case_ids), "done": 0, "current": None, "status": "running", "error": None}
    write(state)
    try:
        def step(n: int, total: int, case_id: str) -> None:
            state.update(done=n, current=case_id)
            write(state)

        export_records(archive, open_book(archive, services.settings.data_dir), case_ids, folder / "packages",
                       actor=actor, progress=step)
        state["status"] = "done"
    except SohoaError as exc:
        state.update(status="failed", error=exc.user_message())
    except Exception as exc:
        import logging

        logging.getLogger(__name__).exception("export failed")
        state.update(status="failed", error=f"Xuất gói thất bại ({type(exc).__name__}).")
    write(state)


@router.post("/archivist/export")
async def export_start(ctx: Annotated[Ctx, guard(Action.MANAGE_RECORDS)], request: Request) -> Response:
    from flows.transfer import select_cases

    form = await request.form()
    year_text = str(form.get("year") or "").strip()
    if year_text and not (year_text.isdigit() and len(year_text) == 4):
        raise HTTPException(status_code=400, detail="Năm phải có 4 chữ số.")
    archive = Archive(ctx.services.store, ctx.services.catalog)
    ids = select_cases(archive, unit=ctx.unit or "", year=int(year_text) if year_text else None)
    job = "".join(secrets.choice(_JOB) for _ in range(12))
    folder = _exports_dir(ctx) / job
    folder.mkdir(parents=True)
    (folder / "job.json").write_text(json.dumps({"unit": ctx.unit, "actor": ctx.principal.actor}), encoding="utf-8")
    threading.Thread(target=_run_export, args=(ctx.services, ids, folder, ctx.principal.actor), daemon=True,
                     name=f"export-{job}").start()
    return RedirectResponse(f"/archivist/exports/{job}?unit={ctx.unit}", status_code=303)


@router.get("/archivist/exports/{job}", response_class=HTMLResponse)
def export_page(ctx: Annotated[Ctx, guard(Action.MANAGE_RECORDS)], job: str) -> Response:
    folder = _exports_dir(ctx) / job
    if not (len(job) == 12 and all(c in _JOB for c in job)) or not (folder / "job.json").is_file():
        raise HTTPException(status_code=404, detail="not found")
    meta = json.loads((folder / "job.json").read_text(encoding="utf-8"))
    if meta.get("unit") != ctx.unit:
        raise HTTPException(status_code=404, detail="not found")
    try:
        state = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = {"total": 0, "done": 0, "status": "starting"}
    return _render(ctx, "export_job.html", job=job, unit=ctx.unit, state=state, folder=str(folder / "packages"))
