"""Reusing an e-copy digitized before (issue 20): ``POST /api/v1/cases/{case}/reuse`` and the desk's form.

The citizen shows the result code printed on their e-copy's stamp and their citizen ID. When the code
names a stored document whose extracted (or operator-typed) citizen ID is that one, and its signatures
still verify, the new case gets a catalog link to it (storage/reuse.py): the same stored objects, no
copy. A wrong code, a code of nothing and a wrong citizen ID all answer the same 404 and are audited,
so the form cannot be used to learn which codes exist. Both units' trails record a reuse.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Form, HTTPException
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from models import InvalidCaseId
from models.policy import Action, decide
from storage import job_events, reuse
from storage.dossiers import parse_case_id
from web.deps import Ctx, guard
from web.esystem import DocumentOut, document_out, document_signatures

router = APIRouter(tags=["sohoa"])
AUDIT_ACTION = "reuse_document"


class ReuseRequest(BaseModel):
    """What the citizen shows: the result code on their e-copy's stamp and their citizen ID."""

    result_code: str = Field(max_length=96, examples=["000.00.01.H56-181010-0001-KQ36F688361B"])
    citizen_id: str = Field(max_length=20, examples=["008085001234"])


class ReuseRefused(Exception):
    """The reuse cannot be made: ``status`` 404 (nothing to say) or 409 (signature no longer valid)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def attach(ctx: Ctx, case_id: str, result_code: str, citizen_id: str) -> DocumentOut:
    """Check the code, the citizen ID and the signatures, link the e-copy, audit both units; or ReuseRefused."""
    services = ctx.services
    rec = reuse.document_by_result_code(services.catalog, result_code)
    refusal = None
    if rec is None:
        refusal = "no document with this result code"
    elif not reuse.citizen_matches(rec, citizen_id):
        refusal = "citizen ID does not match the document"
    if refusal is not None:
        ctx.audit(AUDIT_ACTION, "not_found", case_id=case_id, document_id=None,
                  detail=f"{refusal}: {result_code.strip()[:96]}")
        raise ReuseRefused(404, refusal)
    assert rec is not None
    signatures = document_signatures(services, rec, fresh=True)  # re-verified now, not from the cache
    if not signatures or not all(s.get("valid") for s in signatures):
        why = "; ".join(p for s in signatures for p in s.get("problems") or []) or "not signed"
        ctx.audit(AUDIT_ACTION, "refused", case_id=case_id, document_id=rec.document_id,
                  detail=f"signature not valid ({why})"[:500])
        raise ReuseRefused(409, why)
    if reuse.link(services.catalog, case_id=case_id, rec=rec, linked_by=ctx.principal.actor):
        job_events.document_changed(services.catalog.engine, "document.stored", replace(rec, case_id=case_id),
                                    reused_from=rec.case_id)
    # Both trails: the new case's unit took the e-copy, the original case's unit sees who reused it.
    ctx.audit(AUDIT_ACTION, "allowed", case_id=case_id, document_id=rec.document_id,
              detail=f"from {rec.case_id} ({rec.result_code})")
    ctx.audit("reused_by", "allowed", case_id=rec.case_id, document_id=rec.document_id,
              detail=f"attached to {case_id} by {ctx.principal.actor}")
    return document_out(rec, case_id, signatures=signatures, preflight=[], reused_from=rec.case_id)


@router.post("/api/v1/cases/{case}/reuse", status_code=201, response_model=DocumentOut,
             summary="Attach an e-copy digitized before (its result code and the citizen's ID) to this case, "
                     "without rescanning; a wrong code or ID answers 404")
def reuse_api(ctx: Annotated[Ctx, guard(Action.UPLOAD)], body: ReuseRequest) -> DocumentOut:
    try:
        return attach(ctx, ctx.case_id, body.result_code, body.citizen_id)  # type: ignore[arg-type]
    except ReuseRefused as exc:
        if exc.status == 404:
            raise HTTPException(404, "not found") from None
        raise HTTPException(409, "Chữ ký số của bản điện tử không còn hợp lệ (the e-copy's signature is not "
                                 "valid): " + exc.reason) from None


@router.post("/desk/reuse", include_in_schema=False)
async def reuse_form(ctx: Annotated[Ctx, guard(Action.LIST_CASES)], case: Annotated[str, Form(max_length=64)],
                     result_code: Annotated[str, Form(max_length=96)],
                     citizen_id: Annotated[str, Form(max_length=20)]) -> Any:
    try:
        case_id = parse_case_id(case.strip())
    except InvalidCaseId:
        return RedirectResponse("/desk?reuse=bad-case", status_code=303)
    decision = decide(ctx.principal, Action.UPLOAD, case_id=case_id)
    if not decision.allowed:
        await run_in_threadpool(ctx.audit, AUDIT_ACTION, decision.outcome.value, case_id=case_id,
                                detail=decision.reason)
        return RedirectResponse("/desk?reuse=forbidden", status_code=303)
    try:
        await run_in_threadpool(attach, ctx, case_id, result_code, citizen_id)
    except ReuseRefused as exc:
        return RedirectResponse("/desk?reuse=" + ("not-found" if exc.status == 404 else "invalid-signature"),
                                status_code=303)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)
