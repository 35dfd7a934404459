"""Web settings from the environment (SOHOA_WEB_*, SOHOA_OIDC_*), read once when the app is made."""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class WebSettings:
    """How the web app behaves; the store and catalog come from storage.config.Settings."""

    idle: dt.timedelta = dt.timedelta(minutes=30)
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-Proto/For are believed
    max_login_failures: int = 5          # per account name within the window, then 429
    max_client_failures: int = 20        # per client address within the window
    login_window: dt.timedelta = dt.timedelta(minutes=15)
    # Unauthenticated refusals (no or a bad token) from one address: this many rows a window are
    # written one by one, the rest counted and written as one row when the next window starts.
    refusal_rows: int = 5
    refusal_window: dt.timedelta = dt.timedelta(minutes=1)
    link_max: dt.timedelta = dt.timedelta(minutes=15)
    audit_export_every: dt.timedelta = dt.timedelta(hours=1)
    cache_dir: Path | None = None        # default <data_dir>/web-cache
    cache_max_bytes: int = 2 << 30       # pruned (least recently used first) above this; SOHOA_WEB_CACHE_MAX_MB
    cache_prune_every: dt.timedelta = dt.timedelta(minutes=10)
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_units_claim: str = "sohoa_units"
    oidc_role_claim: str = "sohoa_role"
    oidc_name_claim: str = "preferred_username"

    def __repr__(self) -> str:  # never print the client secret
        return f"WebSettings(idle={self.idle}, trusted_proxies={self.trusted_proxies}, oidc_issuer={self.oidc_issuer!r})"

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> WebSettings:
        """SOHOA_WEB_IDLE_MINUTES, SOHOA_WEB_TRUSTED_PROXIES (comma list), SOHOA_WEB_CACHE_DIR,
        SOHOA_WEB_CACHE_MAX_MB, SOHOA_WEB_MAX_LOGIN_FAILURES, SOHOA_WEB_MAX_CLIENT_FAILURES,
        SOHOA_WEB_REFUSAL_ROWS, SOHOA_WEB_REFUSAL_WINDOW_SECONDS, SOHOA_OIDC_*."""
        env = os.environ if env is None else env
        proxies = tuple(p.strip() for p in (env.get("SOHOA_WEB_TRUSTED_PROXIES") or "").split(",") if p.strip())
        cache = env.get("SOHOA_WEB_CACHE_DIR")
        return cls(
            idle=dt.timedelta(minutes=float(env.get("SOHOA_WEB_IDLE_MINUTES") or 30)),
            trusted_proxies=proxies,
            max_login_failures=int(env.get("SOHOA_WEB_MAX_LOGIN_FAILURES") or 5),
            max_client_failures=int(env.get("SOHOA_WEB_MAX_CLIENT_FAILURES") or 20),
            refusal_rows=int(env.get("SOHOA_WEB_REFUSAL_ROWS") or 5),
            refusal_window=dt.timedelta(seconds=float(env.get("SOHOA_WEB_REFUSAL_WINDOW_SECONDS") or 60)),
            cache_dir=Path(cache) if cache else None,
            cache_max_bytes=int(float(env.get("SOHOA_WEB_CACHE_MAX_MB") or 2048) * (1 << 20)),
            oidc_issuer=env.get("SOHOA_OIDC_ISSUER") or None,
            oidc_client_id=env.get("SOHOA_OIDC_CLIENT_ID") or None,
            oidc_client_secret=env.get("SOHOA_OIDC_CLIENT_SECRET") or None,
            oidc_units_claim=env.get("SOHOA_OIDC_UNITS_CLAIM") or "sohoa_units",
            oidc_role_claim=env.get("SOHOA_OIDC_ROLE_CLAIM") or "sohoa_role",
            oidc_name_claim=env.get("SOHOA_OIDC_NAME_CLAIM") or "preferred_username",
        )
