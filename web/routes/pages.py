"""The HTML pages for case handlers: search, case list, case, document, page views."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup, escape

from models import NotFound
from models.clock import local_time
from models.policy import Action, readable_units
from pipeline.reader import render_page_png
from storage import cache, dossiers, identifiers
from storage.textsearch import HIGHLIGHT
from web.templating import templates
from web.deps import Ctx, guard, resolve_principal
from web.esystem import document_signatures
from web.routes.api import load_case, load_document
from web.routes.operator_sign import operator_signing

router = APIRouter(include_in_schema=False)
PER_PAGE = 25
THUMB_WIDTHS = (120, 200, 1000)


def highlight(snippet: str) -> Markup:
    """A snippet with «matched words» as <mark>, everything else escaped."""
    out, rest = [], snippet
    while HIGHLIGHT[0] in rest:
        before, _, after = rest.partition(HIGHLIGHT[0])
        word, _, rest = after.partition(HIGHLIGHT[1])
        out += [str(escape(before)), f"<mark>{escape(word)}</mark>"]
    out.append(str(escape(rest)))
    return Markup("".join(out))


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}%"


def when(value: str | None) -> str:
    if not value:
        return "–"
    try:
        t = local_time(value)
    except ValueError:
        return value
    return t.strftime("%d/%m/%Y %H:%M")


def doc_title(doc: Any, order: int | None = None) -> str:
    """A document as people name it: its kind (and its place in the case), not the scanner's file name."""
    title = getattr(doc, "kind", None) or "Tài liệu"
    return f"{title} {order}" if order else title


templates.env.filters.update(highlight=highlight, percent=percent, when=when, doc_title=doc_title)


def render(ctx: Ctx, name: str, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(ctx.request, name, {"principal": ctx.principal, "csrf": ctx.csrf,
                                                          "units": sorted(ctx.principal.units), **context})


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


@router.get("/search", response_class=HTMLResponse)
def search_page(ctx: Annotated[Ctx, guard(Action.SEARCH)], q: Annotated[str, Query(max_length=200)] = "",
                since: str = "", until: str = "", kind: Annotated[str, Query(max_length=64)] = "") -> Response:
    groups, found = [], []
    if q.strip():
        units = readable_units(ctx.principal)
        found = identifiers.find_identifier(ctx.services.catalog, q, units=units, unit=ctx.unit, limit=60)
        groups = dossiers.search_cases(ctx.services.catalog, q, units=units, unit=ctx.unit,
                                       since=_day(since), until=_day(until), kind=kind or None, limit=60)
    return render(ctx, "search.html", q=q, unit=ctx.unit or "", since=since, until=until, kind=kind, groups=groups,
                  identifiers=found)


@router.get("/cases", response_class=HTMLResponse)
def cases_page(ctx: Annotated[Ctx, guard(Action.LIST_CASES)], page: Annotated[int, Query(ge=1, le=100000)] = 1,
               since: str = "", until: str = "") -> Response:
    rows = dossiers.list_cases(ctx.services.catalog, units=readable_units(ctx.principal), unit=ctx.unit,
                               since=_day(since), until=_day(until), limit=PER_PAGE + 1,
                               offset=(page - 1) * PER_PAGE)
    return render(ctx, "cases.html", cases=rows[:PER_PAGE], page=page, more=len(rows) > PER_PAGE,
                  unit=ctx.unit or "", since=since, until=until)


@router.get("/cases/{case}", response_class=HTMLResponse)
def case_page(ctx: Annotated[Ctx, guard(Action.VIEW_CASE)]) -> Response:
    docs, notes = load_case(ctx)
    may_original = ctx.may(Action.DOWNLOAD_ORIGINAL)
    return render(ctx, "case.html", case_id=ctx.case_id, documents=docs, notes=notes, may_original=may_original)


@router.get("/cases/{case}/documents/{doc}", response_class=HTMLResponse)
def document_page(ctx: Annotated[Ctx, guard(Action.VIEW_DOCUMENT)]) -> Response:
    rec = load_document(ctx)
    signatures = document_signatures(ctx.services, rec)
    return render(ctx, "document.html", case_id=ctx.case_id, doc=rec, signatures=signatures,
                  may_original=ctx.may(Action.DOWNLOAD_ORIGINAL), **operator_signing(ctx, rec, signatures))


@router.get("/cases/{case}/documents/{doc}/pages/{number:int}", response_class=HTMLResponse)
def page_view(ctx: Annotated[Ctx, guard(Action.VIEW_DOCUMENT)], number: int) -> Response:
    rec = load_document(ctx)
    if not 1 <= number <= rec.page_count:
        raise HTTPException(404, "not found")
    text = next((p.text for p in rec.pages if p.number == number), "")
    return render(ctx, "page.html", case_id=ctx.case_id, doc=rec, number=number, text=text)


@router.get("/cases/{case}/documents/{doc}/pages/{number:int}.png")
def page_png(ctx: Annotated[Ctx, guard(Action.VIEW_DOCUMENT, audit_allowed=False)], number: int,
             w: int = 200) -> Response:
    rec = load_document(ctx)
    width = min(THUMB_WIDTHS, key=lambda t: abs(t - w))
    key = rec.keys.get("searchable_pdf")
    if not key or not 1 <= number <= rec.page_count:
        raise HTTPException(404, "not found")
    try:
        pdf, st = dossiers.local_copy(ctx.services.store, key, ctx.services.cache_dir / "objects")
    except NotFound:
        raise HTTPException(404, "not found") from None
    thumb = ctx.services.cache_dir / "pages" / st.sha256[:2] / f"{st.sha256}-{number}-{width}.png"
    if thumb.exists():
        cache.touch(thumb)
    else:
        thumb.parent.mkdir(parents=True, exist_ok=True)
        cache.fill(thumb, lambda part: part.write_bytes(render_page_png(pdf, number, width=width)))
    etag = '"' + hashlib.sha256(f"{st.sha256}-{number}-{width}".encode()).hexdigest()[:32] + '"'
    if ctx.request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers={"ETag": etag})
    return Response(thumb.read_bytes(), media_type="image/png",
                    headers={"ETag": etag, "Cache-Control": "private, no-cache"})  # revalidated: no page image outlives the session


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> Response:
    principal, session = resolve_principal(request)
    return templates.TemplateResponse(request, "api_docs.html", {"principal": principal,
                                                                 "csrf": session.csrf if session else ""})
