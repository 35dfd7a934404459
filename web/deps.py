"""Who is asking, and may they: the one dependency every route declares.

``Guard(action)`` resolves the principal (session cookie or bearer token), validates the IDs in the
URL before anything reaches storage, asks ``models.policy.decide``, checks the CSRF token of a
state-changing browser request, and writes the audit entry — allowed or refused — in one place.
A route cannot reach data without it, because the validated IDs and the services come from it.
"""
from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from models import InvalidCaseId
from models.policy import UNIT_PATTERN, Action, Decision, Outcome, Principal, decide
from storage.accounts import WebSession
from storage.dossiers import parse_case_id, valid_document_id
from web.services import Services

SESSION_COOKIE = "sohoa_session"
CSRF_COOKIE = "sohoa_csrf"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BACKGROUND_HEADER = "x-sohoa-background"  # a page's own polling: not the user's activity
EVENT_STREAM = re.compile(r"^/api/v1/jobs/[0-9a-f]{32}/events$")  # EventSource cannot set headers
_BEARER = re.compile(r"^Bearer\s+(\S+)$", re.IGNORECASE)
# Actions whose allowed requests are written to the trail (every refusal is always recorded).
AUDITED_READS = frozenset(Action)


class NeedSignIn(Exception):
    """Raised by the access dependency when nobody is signed in (pages: redirect; API: 401)."""


def services_of(request: Request) -> Services:
    return request.app.state.services


def client_of(request: Request) -> str | None:
    return request.client.host if request.client else None


@dataclass
class Ctx:
    """What a guarded route receives: who, the validated case and document, and the services."""

    principal: Principal
    services: Services
    request: Request
    action: Action
    case_id: str | None = None
    document_id: str | None = None
    unit: str | None = None
    session: WebSession | None = None

    @property
    def csrf(self) -> str:
        return self.session.csrf if self.session else ""

    def may(self, action: Action) -> bool:
        """Whether the policy also allows ``action`` on this request's case (to offer a link or button)."""
        return decide(self.principal, action, case_id=self.case_id, unit=self.unit).allowed

    def require(self, action: Action) -> None:
        """A second action inside a guarded route (e.g. originals in the case ZIP): refused → audited, 403/404."""
        decision = decide(self.principal, action, case_id=self.case_id, unit=self.unit)
        if not decision.allowed:
            self.audit(action, decision.outcome.value,
                       detail=_refusal_detail(decision, self.request))
            raise _refuse(decision)

    @property
    def operator(self) -> str:
        """Who receives the scans: the signed-in user, the operator a token acts for, else ``token:NAME``."""
        if self.principal.kind == "user":
            return self.principal.name
        token = getattr(self.request.state, "token", None)
        return token.operator if token is not None and token.operator else self.principal.actor

    def audit(self, action: str | Action, outcome: str = "allowed", **fields: Any) -> None:
        """Append an entry for this principal and client (case and document default to the request's)."""
        fields.setdefault("case_id", self.case_id)
        fields.setdefault("document_id", self.document_id)
        self.services.audit.append(actor=self.principal.actor, action=str(getattr(action, "value", action)),
                                   outcome=outcome, client=client_of(self.request), **fields)


def resolve_principal(request: Request) -> tuple[Principal | None, WebSession | None]:
    """The bearer token's or the session cookie's principal (cached on the request); a bad token is audited."""
    if hasattr(request.state, "resolved"):
        return request.state.resolved
    services = services_of(request)
    principal: Principal | None = None
    session: WebSession | None = None
    header = request.headers.get("authorization")
    if header:
        m = _BEARER.fullmatch(header.strip())
        token = services.accounts.token_for(m.group(1)) if m else None
        if token is None:
            note_unauthenticated(services, client=client_of(request), action="token_use", outcome="refused",
                                 detail="unknown, revoked or expired token")
        else:
            principal = token.principal()
            request.state.token = token
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = services.accounts.session_for(cookie, touch=not is_background(request))
        if session is not None:
            principal = session.user.principal()
        elif cookie:
            request.state.session_ended = True  # the sign-in page says the session ended
    request.state.resolved = (principal, session)
    request.state.principal = principal
    request.state.csrf = session.csrf if session else ""
    return principal, session


def note_unauthenticated(services: Services, *, client: str | None, action: str, outcome: str,
                         detail: str, case_id: str | None = None, document_id: str | None = None) -> None:
    """Audit a refusal of a request nobody is signed in for, throttled per client address.

    Anyone can send such requests: one row each would let a script fill the trail. The first
    ``refusal_rows`` of a window are written; the others are counted (storage/throttle.py) and
    written as ONE row with their number when the address's next window starts.
    """
    web = services.web
    hit = services.throttle.hit(f"refused:client:{client}", window=web.refusal_window)
    if hit.previous > web.refusal_rows:
        since = hit.previous_start.isoformat(timespec="seconds") if hit.previous_start else "?"
        services.audit.append(actor="anonymous", action="refusals", outcome="aggregated", client=client,
                              detail=f"{hit.previous - web.refusal_rows} more unauthenticated refusals from this "
                                     f"address in the window from {since}, counted, not written one by one")
    if hit.count <= web.refusal_rows:
        services.audit.append(actor="anonymous", action=action, outcome=outcome, client=client, detail=detail,
                              case_id=case_id, document_id=document_id)


class CsrfNotInHeader(HTTPException):
    """A browser upload (multipart) whose CSRF token is not in the header: the body is the upload's stream."""

    def __init__(self) -> None:
        super().__init__(403, "Hãy gửi mã CSRF trong tiêu đề X-CSRF-Token khi tải tệp lên. "
                              "(Send the CSRF token in the X-CSRF-Token header of an upload.)")


def is_background(request: Request) -> bool:
    """A request a page makes by itself (polling, an event stream), which must not keep the session alive."""
    return request.method in SAFE_METHODS and (request.headers.get(BACKGROUND_HEADER) == "1"
                                               or bool(EVENT_STREAM.match(request.url.path)))


async def _csrf_ok(request: Request, session: WebSession | None) -> bool:
    if request.method in SAFE_METHODS or session is None:
        return True  # bearer-token requests carry no ambient credentials
    presented = request.headers.get(CSRF_HEADER)
    ctype = request.headers.get("content-type", "")
    if presented is None and ctype.startswith("multipart/form-data"):
        # Reading the form here would consume the stream the upload route reads ("Stream consumed").
        raise CsrfNotInHeader()
    if presented is None and ctype.startswith("application/x-www-form-urlencoded"):
        presented = (await request.form()).get(CSRF_FIELD)
    return isinstance(presented, str) and hmac.compare_digest(presented, session.csrf)


def _refusal_detail(decision: Decision, request: Request) -> str:
    """What the audit trail records of a refused request: why, and which request."""
    return f"{decision.reason}: {request.method} {request.url.path}"[:500]


def _refuse(decision: Decision) -> HTTPException:
    if decision.outcome is Outcome.UNAUTHENTICATED:
        return NeedSignIn()  # type: ignore[return-value]
    return HTTPException(status_code=decision.status_code,
                         detail="not found" if decision.outcome is Outcome.NOT_FOUND else "forbidden")


class Guard:
    """``Depends(Guard(Action.VIEW_CASE))``: authenticate, validate IDs, decide, check CSRF, audit."""

    def __init__(self, action: Action, *, audit_allowed: bool = True) -> None:
        self.action = action
        self.audit_allowed = audit_allowed

    async def __call__(self, request: Request) -> Ctx:
        services = services_of(request)
        principal, session = await run_in_threadpool(resolve_principal, request)
        params = request.path_params
        case_id = document_id = unit = None
        decision: Decision | None = None
        try:
            if "case" in params:
                case_id = parse_case_id(params["case"])
            if "doc" in params and not valid_document_id(params["doc"]):
                raise InvalidCaseId(params["doc"])
        except InvalidCaseId:
            decision = Decision(Outcome.NOT_FOUND, "malformed id in URL")
        document_id = params.get("doc") if decision is None else None
        # A unit in the path is set by a route's own dependency (a job uploaded to a unit, web.routes.desk).
        raw_unit = params.get("unit") or request.query_params.get("unit") or None
        if raw_unit is not None:
            if UNIT_PATTERN.fullmatch(raw_unit):
                unit = raw_unit
            else:
                decision = decision or Decision(Outcome.NOT_FOUND, "malformed unit")
        if principal is None:
            decision = Decision(Outcome.UNAUTHENTICATED, "not signed in")
        decision = decision or decide(principal, self.action, case_id=case_id, unit=unit)
        refusal: HTTPException | None = None
        try:
            if decision.allowed and not await _csrf_ok(request, session):
                decision = Decision(Outcome.FORBIDDEN, "missing or wrong CSRF token")
        except CsrfNotInHeader as exc:
            decision, refusal = Decision(Outcome.FORBIDDEN, "CSRF token of an upload not in its header"), exc
        actor = principal.actor if principal else "anonymous"
        if not decision.allowed and principal is None:
            await run_in_threadpool(
                note_unauthenticated, services, client=client_of(request), action=self.action.value,
                outcome=decision.outcome.value, case_id=case_id, document_id=document_id,
                detail=_refusal_detail(decision, request))
            raise _refuse(decision)
        if not decision.allowed:
            await run_in_threadpool(
                services.audit.append, actor=actor, action=self.action.value, outcome=decision.outcome.value,
                case_id=case_id, document_id=document_id, client=client_of(request),
                detail=_refusal_detail(decision, request))
            raise refusal or _refuse(decision)
        ctx = Ctx(principal=principal, services=services, request=request, action=self.action,  # type: ignore[arg-type]
                  case_id=case_id, document_id=document_id, unit=unit, session=session)
        if self.action in AUDITED_READS and self.audit_allowed:
            detail = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            await run_in_threadpool(ctx.audit, self.action, "allowed", detail=detail[:500])
        return ctx


def guard(action: Action, *, audit_allowed: bool = True) -> Any:
    """The dependency for a route doing ``action``: ``ctx: Annotated[Ctx, guard(Action.SEARCH)]``.

    ``audit_allowed=False`` only for page thumbnails: the page that shows them is the recorded view,
    and a refused thumbnail is still recorded.
    """
    return Depends(Guard(action, audit_allowed=audit_allowed))


CaseRead = Annotated[Ctx, guard(Action.VIEW_CASE)]
