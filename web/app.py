"""The web app factory: pages for case handlers, the /api/v1 JSON API, static assets, security headers.

``create_app()`` opens the same store and catalog as the CLI (storage.config.Settings from the
environment). Nothing is kept in one process's memory that another replica would need: sessions,
sign-in failures and the audit trail are in the database, files in the object store (the local
cache under ``web-cache/`` is content-addressed, only saves downloads and is pruned, least recently used
first, above SOHOA_WEB_CACHE_MAX_MB).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.middleware.base import BaseHTTPMiddleware

from storage import cache
from storage.config import Settings
from web.config import WebSettings
from web.deps import NeedSignIn
from web.routes import admin, api, archivist, auth, desk, operator_sign, pages, reuse
from web.services import Services, open_services
from web.errors import error_page

log = logging.getLogger("sohoa.web")
HERE = Path(__file__).parent

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'self'; frame-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SecurityHeaders(BaseHTTPMiddleware):
    """CSP without inline script, no framing by others, no MIME sniffing, no referrer leaks."""

    async def dispatch(self, request: Request, call_next):  # type: ignore[no-untyped-def]
        response: Response = await call_next(request)
        framable = response.headers.get("x-sohoa-framable") == "1"
        if framable:  # the inline PDF is shown in an <iframe> of our own document page
            del response.headers["x-sohoa-framable"]
        response.headers.setdefault(
            "Content-Security-Policy",
            CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'") if framable else CSP)
        response.headers.setdefault("X-Frame-Options", "SAMEORIGIN" if framable else "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        if not request.url.path.startswith("/static/"):
            # A shared counter PC: "no-store" keeps a dossier (and the desk) out of the back/forward and
            # disk caches, so Back after signing out asks the server again and gets the sign-in page.
            response.headers.setdefault("Cache-Control", "no-store")
        return response


def export_audit(services: Services) -> list[str]:
    """Export the audit trail's new days to the object store and anchor their heads; a failure is logged, never fatal."""
    from storage import audit_anchor

    try:
        written = services.audit.export(services.store)
        key = audit_anchor.load_key(services.settings.data_dir, create=True)
        return written + audit_anchor.anchor_days(services.catalog.engine, services.store, key)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - the store may be down; the next run catches up
        log.warning("audit export failed: %s", exc)
        return []


def prune_cache(services: Services) -> cache.PruneReport | None:
    """Keep the local download cache under its limit (SOHOA_WEB_CACHE_MAX_MB); a failure is logged, never fatal."""
    try:
        report = cache.prune(services.cache_dir, max_bytes=services.web.cache_max_bytes)
    except OSError as exc:
        log.warning("web cache prune failed: %s", exc)
        return None
    if report.removed or report.leftovers_removed:
        log.info("web cache: %d files (%d MB) removed, %d MB kept, %d leftovers removed", report.removed,
                 report.bytes_removed >> 20, report.bytes_after >> 20, report.leftovers_removed)
    return report


async def _export_loop(services: Services) -> None:
    while True:
        await asyncio.sleep(services.web.audit_export_every.total_seconds())
        await run_in_threadpool(export_audit, services)
        await run_in_threadpool(services.accounts.purge_sessions)
        # Counters whose window ended long ago hold nothing a throttle still needs.
        await run_in_threadpool(services.throttle.purge, older_than=dt.timedelta(days=1))


async def _prune_loop(services: Services) -> None:
    while True:
        await run_in_threadpool(prune_cache, services)
        await asyncio.sleep(services.web.cache_prune_every.total_seconds())


def start_webhooks(services: Services) -> Any:
    """The webhook delivery thread (flows/webhook_delivery.py), unless SOHOA_WEBHOOK_DELIVERY=0."""
    if (os.environ.get("SOHOA_WEBHOOK_DELIVERY") or "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    from flows.webhook_delivery import DeliveryWorker

    return DeliveryWorker(services.catalog.engine).start()


def create_app(settings: Settings | None = None, web: WebSettings | None = None) -> FastAPI:
    """The FastAPI application on the store and catalog of ``settings`` (default: the environment)."""
    services = open_services(settings, web)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # type: ignore[no-untyped-def]
        await run_in_threadpool(export_audit, services)
        await run_in_threadpool(desk.start, app)  # the desk's intake service (SOHOA_INTAKE_SERVICE=0: elsewhere)
        hooks = start_webhooks(services)
        tasks = [asyncio.create_task(_export_loop(services)), asyncio.create_task(_prune_loop(services))]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await run_in_threadpool(desk.stop, app)
            if hooks is not None:
                await run_in_threadpool(hooks.stop)

    app = FastAPI(title="sohoa", version="1", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url="/api/v1/openapi.json",
                  description="Hồ sơ số hóa: cases, documents, search and downloads of the units you may see. "
                              "Authenticate with `Authorization: Bearer sohoa_…` (an API token from `sohoa token add`).")
    app.state.services = services
    app.add_middleware(SecurityHeaders)
    if services.web.trusted_proxies:
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(services.web.trusted_proxies))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    desk.install(app)
    app.include_router(auth.router)
    app.include_router(desk.router)
    app.include_router(pages.router)
    app.include_router(operator_sign.router)
    app.include_router(api.router)
    app.include_router(reuse.router)
    app.include_router(admin.router)
    app.include_router(archivist.router)

    @app.exception_handler(NeedSignIn)
    async def need_sign_in(request: Request, exc: NeedSignIn):  # type: ignore[no-untyped-def]
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "authentication required"}, status_code=401,
                                headers={"WWW-Authenticate": 'Bearer realm="sohoa"'})
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        from urllib.parse import quote

        ended = "&ended=1" if getattr(request.state, "session_ended", False) else ""
        return RedirectResponse(f"/sign-in?next={quote(target, safe='')}{ended}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):  # type: ignore[no-untyped-def]
        if request.url.path.startswith("/api/") or request.url.path.startswith("/static/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        return error_page(request, exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):  # type: ignore[no-untyped-def]
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": "invalid request", "errors": exc.errors()[:5]}, status_code=422)
        return error_page(request, 400)

    return app


