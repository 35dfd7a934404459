"""The operator's own signature, added later from the document page.

An operator whose account had no signer when a document was stored got the agency's signature
alone; the page says "chưa có chữ ký số của người số hóa" and, once the operator has a signer
(``sohoa keys operator add``), offers them a button to sign it: a POST (CSRF-checked for browsers),
allowed only to the operator who digitized the document, audited with its outcome.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from models.policy import Action
from web.deps import Ctx, guard
from web.routes.api import load_document

router = APIRouter()


def _operator_key(ctx: Ctx, operator: str):  # type: ignore[no-untyped-def]
    from pipeline import keyring

    config = keyring.load_signing_config(keyring.keys_dir_for(ctx.services.settings.data_dir))
    return config.operator_signer(operator)


def operator_signing(ctx: Ctx, rec: Any, signatures: list[dict[str, Any]]) -> dict[str, Any]:
    """What the document page says about the operator's signature, and whether it offers the button."""
    missing = bool(signatures) and not any(s["role"] == "operator" for s in signatures)
    mine = missing and rec.operator == ctx.operator and ctx.may(Action.SIGN_AS_OPERATOR)
    has_key = mine and _operator_key(ctx, ctx.operator) is not None
    return {"operator_unsigned": missing, "may_sign_as_operator": has_key, "operator_needs_key": mine and not has_key}


@router.post("/cases/{case}/documents/{doc}/sign-operator", summary="The operator who digitized a document signs it")
async def sign_as_operator(ctx: Annotated[Ctx, guard(Action.SIGN_AS_OPERATOR)]) -> Response:
    from flows.signing import sign_stored

    rec = await run_in_threadpool(load_document, ctx)
    if rec.operator != ctx.operator:
        await run_in_threadpool(ctx.audit, Action.SIGN_AS_OPERATOR, "forbidden",
                                detail=f"digitized by {rec.operator}, not {ctx.operator}")
        raise HTTPException(403, "forbidden")
    if _operator_key(ctx, ctx.operator) is None:
        await run_in_threadpool(ctx.audit, Action.SIGN_AS_OPERATOR, "failed", detail="operator has no signer")
        raise HTTPException(409, "Tài khoản chưa có khóa ký cá nhân (no personal signer): sohoa keys operator add")
    result = await run_in_threadpool(sign_stored, ctx.case_id, ctx.document_id, as_operator=ctx.operator,
                                     where=ctx.services.settings)
    signing = result["signing"]
    done = any(s["role"] == "operator" for s in signing["signatures"])
    detail = ("operator signature added: " + ", ".join(s["signer"] for s in signing["signatures"])) if done \
        else signing["message_en"]
    await run_in_threadpool(ctx.audit, Action.SIGN_AS_OPERATOR, "allowed" if done else "failed", detail=detail[:500])
    if not done:
        raise HTTPException(502, f"Không ký số được ({signing['message_vi']})")
    return RedirectResponse(f"/cases/{ctx.case_id}/documents/{ctx.document_id}", status_code=303)
