"""The administrator's page: who saw a dossier (the audit trail), and whether the chain is intact."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from models import CaseId, InvalidCaseId
from models.policy import Action
from web import labels
from web.app import templates
from web.deps import Ctx, guard

router = APIRouter(include_in_schema=False)
labels.install(templates.env)


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(ctx: Annotated[Ctx, guard(Action.READ_AUDIT)],
               case: Annotated[str, Query(max_length=64)] = "", verify: bool = False) -> Response:
    case_id = None
    if case.strip():
        try:
            case_id = str(CaseId.parse(case))
        except InvalidCaseId:
            case_id = case.strip()
    entries = ctx.services.audit.entries(case_id=case_id, limit=500, newest_first=True)
    problems = [p.message() for p in ctx.services.audit.verify()] if verify else None
    return templates.TemplateResponse(ctx.request, "audit.html", {
        "principal": ctx.principal, "csrf": ctx.csrf, "entries": entries, "case": case, "problems": problems})
