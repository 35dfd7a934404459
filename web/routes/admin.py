"""The administrator's page: who saw a dossier (the audit trail), and whether the chain is intact."""
from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response

from models import CaseId, InvalidCaseId
from models.policy import Action
from web import labels
from web.templating import templates
from web.deps import Ctx, guard

router = APIRouter(include_in_schema=False)
labels.install(templates.env)


def epoch(value: float | None) -> str:
    """Seconds since the epoch as local day and time (the delivery log's times)."""
    import datetime as dt

    return "–" if not value else dt.datetime.fromtimestamp(value).astimezone().strftime("%d/%m/%Y %H:%M:%S")


templates.env.filters["epoch"] = epoch


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
    problems = None
    if verify:  # the chain, then the database against the anchors kept outside it (as `sohoa audit verify`)
        from storage import audit_anchor

        key = audit_anchor.load_key(ctx.services.settings.data_dir, create=False)
        found, _ = audit_anchor.verify(ctx.services.audit, ctx.services.store, key)
        problems = [p.message() for p in found]
    return templates.TemplateResponse(ctx.request, "audit.html", {
        "principal": ctx.principal, "csrf": ctx.csrf, "entries": entries, "case": case, "problems": problems})


@router.get("/admin/webhooks", response_class=HTMLResponse)
def webhooks_page(ctx: Annotated[Ctx, guard(Action.READ_AUDIT)]) -> Response:
    """The e-system's webhooks and the newest deliveries (never a secret)."""
    from storage.outbox import counts, delivery_log
    from storage.webhooks import Webhooks

    engine = ctx.services.catalog.engine
    return templates.TemplateResponse(ctx.request, "webhooks.html", {
        "principal": ctx.principal, "csrf": ctx.csrf, "hooks": Webhooks(engine).list(active_only=False),
        "deliveries": delivery_log(engine, limit=200), "counts": counts(engine)})
