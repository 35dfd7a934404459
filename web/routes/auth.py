"""Sign in and out with a local account (argon2id), throttled; sessions are rows in the database."""
from __future__ import annotations

import asyncio
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from models.policy import Principal
from storage.accounts import NAME_PATTERN
from web.templating import templates
from web.deps import (CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, client_of, note_unauthenticated, resolve_principal,
                      services_of)

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, host or //) may be the page after sign-in."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/search"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/search"


def only_role(principal: Principal) -> str:
    """The role of a principal that has exactly one (every account), else ''."""
    roles = [r.value for r in principal.roles]
    return roles[0] if len(roles) == 1 else ""


def landing(user_role: str, next_url: str) -> str:
    """Where a user goes after signing in: an administrator reads no dossiers, so the audit page."""
    return "/admin/audit" if user_role == "admin" and next_url == "/search" else next_url


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    """HttpOnly, SameSite=Lax, Secure when the request came over https (directly or via a trusted proxy)."""
    response.set_cookie(SESSION_COOKIE, value, httponly=True, samesite="lax", path="/",
                        secure=request.url.scheme == "https")


def sign_in_page(request: Request, *, error: str | None = None, status: int = 200, name: str = "",
                 next_url: str = "/search", notice: str | None = None) -> HTMLResponse:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    services = services_of(request)
    response = templates.TemplateResponse(request, "sign_in.html", {
        "principal": None, "csrf": csrf, "error": error, "notice": notice, "name": name, "next": next_url,
        "oidc": services.web.oidc_enabled}, status_code=status)
    response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@router.get("/")
def home(request: Request) -> Response:
    principal, _ = resolve_principal(request)
    if principal is None:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(landing(only_role(principal), "/search"), status_code=303)


SESSION_ENDED = ("Phiên làm việc đã hết hạn vì không dùng trong một thời gian; hãy đăng nhập lại. "
                 "(Your session expired after a period of inactivity; sign in again.)")


@router.get("/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, next: str | None = None, ended: str | None = None) -> Response:
    principal, _ = resolve_principal(request)
    if principal is not None and principal.kind == "user":
        return RedirectResponse(landing(only_role(principal), safe_next(next)), status_code=303)
    ended_now = bool(ended) or getattr(request.state, "session_ended", False)
    response = sign_in_page(request, next_url=safe_next(next), notice=SESSION_ENDED if ended_now else None)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE, path="/")  # the ended session's cookie is of no more use
    return response


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    services = services_of(request)
    form = await request.form()
    name = str(form.get("name") or "").strip()[:128]
    password = str(form.get("password") or "")
    next_url = safe_next(str(form.get("next") or ""))
    client = client_of(request)
    cookie_csrf = request.cookies.get(CSRF_COOKIE) or ""
    sent_csrf = str(form.get(CSRF_FIELD) or "")
    actor = f"user:{name}" if NAME_PATTERN.fullmatch(name) else "anonymous"
    audit = services.audit
    if not cookie_csrf or not hmac.compare_digest(cookie_csrf, sent_csrf):
        # Anyone can send this: counted per address like the other unauthenticated refusals.
        await run_in_threadpool(note_unauthenticated, services, client=client, action="sign_in", outcome="forbidden",
                                detail=f"missing or wrong CSRF token (name {actor})"[:500])
        return sign_in_page(request, error="Phiên biểu mẫu đã hết hạn, hãy thử lại. (The form expired; try again.)",
                            status=403, name=name, next_url=next_url)
    # The attempt is counted (one atomic UPDATE per counter) BEFORE the password is checked, so
    # parallel guesses each see their own count: at most max_login_failures of them reach the check.
    window = services.web.login_window
    name_key, client_key = f"sign_in:name:{actor}", f"sign_in:client:{client}"
    by_name = await run_in_threadpool(services.throttle.hit, name_key, window=window)
    by_client = await run_in_threadpool(services.throttle.hit, client_key, window=window)
    failures, client_failures = by_name.count - 1, by_client.count - 1
    if failures >= services.web.max_login_failures or client_failures >= services.web.max_client_failures:
        if failures == services.web.max_login_failures or client_failures == services.web.max_client_failures:
            # The first throttled attempt of a burst is written, not one row for each of the rest
            # (a script would fill the trail); the counter holds how many there were.
            await run_in_threadpool(audit.append, actor=actor, action="sign_in", outcome="throttled", client=client,
                                    detail=f"{failures} attempts for the name, {client_failures} from the address")
        await asyncio.sleep(1.0)  # slow a scripted burst down further
        response = sign_in_page(request, status=429, name=name, next_url=next_url,
                                error="Đăng nhập sai quá nhiều lần. Hãy thử lại sau 15 phút. "
                                      "(Too many failed sign-ins; try again in 15 minutes.)")
        response.headers["Retry-After"] = str(int(window.total_seconds()))
        return response
    user = await run_in_threadpool(services.accounts.authenticate, name, password) if name and password else None
    if user is None:
        await run_in_threadpool(audit.append, actor=actor, action="sign_in", outcome="failed", client=client)
        await asyncio.sleep(min(0.25 * (failures + 1), 2.0))  # each further failure waits longer
        return sign_in_page(request, status=401, name=name, next_url=next_url,
                            error="Tên đăng nhập hoặc mật khẩu không đúng. (Wrong name or password.)")
    # The right password: this attempt was no failure (earlier failures in the window still count).
    await run_in_threadpool(services.throttle.release, name_key)
    await run_in_threadpool(services.throttle.release, client_key)
    cookie, _ = await run_in_threadpool(services.accounts.start_session, user, client=client)
    await run_in_threadpool(audit.append, actor=f"user:{user.name}", action="sign_in", outcome="allowed", client=client)
    response = RedirectResponse(landing(user.role.value, next_url), status_code=303)
    set_session_cookie(request, response, cookie)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    services = services_of(request)
    principal, session = await run_in_threadpool(resolve_principal, request)
    form = await request.form()
    cookie = request.cookies.get(SESSION_COOKIE)
    if session is not None and cookie:
        sent = str(form.get(CSRF_FIELD) or "")
        if not hmac.compare_digest(sent, session.csrf):
            await run_in_threadpool(services.audit.append, actor=principal.actor, action="sign_out",  # type: ignore[union-attr]
                                    outcome="forbidden", client=client_of(request), detail="wrong CSRF token")
            return Response("forbidden", status_code=403)
        await run_in_threadpool(services.accounts.end_session, cookie)
        await run_in_threadpool(services.audit.append, actor=principal.actor, action="sign_out",  # type: ignore[union-attr]
                                outcome="allowed", client=client_of(request))
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


OIDC_COOKIE = "sohoa_oidc"


@router.get("/sign-in/oidc")
def oidc_start(request: Request, next: str | None = None) -> Response:
    from web import oidc

    services = services_of(request)
    if not services.web.oidc_enabled:
        return sign_in_page(request, status=404, error="Đăng nhập một lần chưa được cấu hình. (Single sign-on is not set up.)")
    try:
        url, pending = oidc.start(services.web, str(request.url_for("oidc_callback")), safe_next(next))
    except oidc.OidcError as exc:
        return sign_in_page(request, status=503, error=exc.user_message())
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(OIDC_COOKIE, pending, max_age=600, httponly=True, samesite="lax", path="/sign-in/oidc",
                        secure=request.url.scheme == "https")
    return response


@router.get("/sign-in/oidc/callback", name="oidc_callback")
def oidc_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
    from storage.accounts import AccountError
    from web import oidc

    services = services_of(request)
    client = client_of(request)
    pending = request.cookies.get(OIDC_COOKIE, "")
    try:
        if error or not code:
            raise oidc.OidcError(f"The identity provider refused the sign-in ({error or 'no code'}).",
                                 "Nhà cung cấp định danh từ chối đăng nhập.")
        identity = oidc.finish(services.web, redirect_uri=str(request.url_for("oidc_callback")), pending=pending,
                               state=state, code=code)
        user = services.accounts.upsert_oidc_user(subject=identity.subject, name=identity.name, role=identity.role,
                                                  units=identity.units)
        if user.disabled:
            raise oidc.OidcError("This account is disabled.", "Tài khoản này đã bị khóa.")
    except (oidc.OidcError, AccountError) as exc:
        note_unauthenticated(services, client=client, action="sign_in", outcome="failed",
                             detail=f"oidc: {exc.message_en}"[:500])
        response = sign_in_page(request, status=403, error=exc.user_message())
        response.delete_cookie(OIDC_COOKIE, path="/sign-in/oidc")
        return response
    import json

    next_url = safe_next(json.loads(pending).get("next"))
    cookie, _ = services.accounts.start_session(user, client=client)
    services.audit.append(actor=f"user:{user.name}", action="sign_in", outcome="allowed", client=client, detail="oidc")
    response = RedirectResponse(landing(user.role.value, next_url), status_code=303)
    set_session_cookie(request, response, cookie)
    response.delete_cookie(OIDC_COOKIE, path="/sign-in/oidc")
    return response
