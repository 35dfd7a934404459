"""OpenID Connect sign-in (authorization code + PKCE) with Authlib, and the mapping of claims to roles and units.

This is the only module that imports Authlib. The pending request (state, PKCE verifier, nonce, the
page to return to) is kept in a short-lived HttpOnly cookie of the user's own browser, so any replica
can finish a sign-in another replica started; the ID token is checked against the provider's keys
(signature, issuer, audience, expiry, nonce) before its claims are believed.
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from models import SohoaError
from models.policy import Role
from web.config import WebSettings

DISCOVERY_TTL = 3600.0
_cache: dict[str, tuple[float, dict[str, Any], KeySet]] = {}
_lock = threading.Lock()


class OidcError(SohoaError):
    """A single-sign-on answer that cannot be used (shown on the sign-in page, audited)."""

    exit_code = 2


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, and what our claims mapping makes of it."""

    subject: str  # issuer|sub: unique across providers
    name: str
    role: Role
    units: list[str]


def provider(web: WebSettings) -> tuple[dict[str, Any], KeySet]:
    """The provider's discovery document and signing keys (cached for an hour per process)."""
    issuer = (web.oidc_issuer or "").rstrip("/")
    with _lock:
        hit = _cache.get(issuer)
        if hit and time.monotonic() - hit[0] < DISCOVERY_TTL:
            return hit[1], hit[2]
    try:
        with OAuth2Session() as http:
            meta = http.get(f"{issuer}/.well-known/openid-configuration", timeout=10, withhold_token=True).json()
            keys = KeySet.import_key_set(http.get(meta["jwks_uri"], timeout=10, withhold_token=True).json())
    except (OSError, ValueError, KeyError) as exc:  # requests' errors are OSErrors; bad JSON is a ValueError
        raise OidcError(f"The identity provider cannot be reached ({type(exc).__name__}); try again later.",
                        "Không kết nối được nhà cung cấp định danh; hãy thử lại sau.") from None
    with _lock:
        _cache[issuer] = (time.monotonic(), meta, keys)
    return meta, keys


def start(web: WebSettings, redirect_uri: str, next_url: str) -> tuple[str, str]:
    """(URL to send the browser to, cookie value holding state, verifier, nonce and next page)."""
    meta, _ = provider(web)
    state, verifier, nonce = generate_token(32), generate_token(64), generate_token(32)
    client = OAuth2Session(web.oidc_client_id, web.oidc_client_secret, scope="openid profile",
                           redirect_uri=redirect_uri, code_challenge_method="S256")
    url, _ = client.create_authorization_url(meta["authorization_endpoint"], state=state, code_verifier=verifier,
                                             nonce=nonce)
    return url, json.dumps({"state": state, "verifier": verifier, "nonce": nonce, "next": next_url})


def finish(web: WebSettings, *, redirect_uri: str, pending: str, state: str, code: str) -> Identity:
    """Exchange the code (with the PKCE verifier), check the ID token, map its claims."""
    try:
        saved = json.loads(pending)
    except (TypeError, ValueError):
        raise OidcError("The sign-in request expired; start again.", "Yêu cầu đăng nhập đã hết hạn; hãy thử lại.") from None
    if not state or state != saved.get("state"):
        raise OidcError("The sign-in answer does not match the request (state); start again.",
                        "Phản hồi đăng nhập không khớp yêu cầu; hãy thử lại.")
    meta, keys = provider(web)
    try:
        with OAuth2Session(web.oidc_client_id, web.oidc_client_secret, redirect_uri=redirect_uri) as client:
            token = client.fetch_token(meta["token_endpoint"], code=code, code_verifier=saved["verifier"],
                                       grant_type="authorization_code", timeout=10)
    except (OSError, ValueError) as exc:
        raise OidcError(f"The identity provider refused the code ({type(exc).__name__}).",
                        "Nhà cung cấp định danh từ chối mã đăng nhập.") from None
    except Exception as exc:  # noqa: BLE001 - Authlib's OAuthError family: an answer we cannot use
        raise OidcError(f"The identity provider refused the code ({type(exc).__name__}).",
                        "Nhà cung cấp định danh từ chối mã đăng nhập.") from None
    raw = token.get("id_token")
    if not raw:
        raise OidcError("The identity provider sent no ID token.", "Nhà cung cấp định danh không gửi ID token.")
    try:
        decoded = jwt.decode(raw, keys)
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": meta["issuer"]},
                              aud={"essential": True, "value": web.oidc_client_id},
                              nonce={"essential": True, "value": saved["nonce"]},
                              exp={"essential": True}).validate(decoded.claims)
    except Exception as exc:  # noqa: BLE001 - joserfc raises several types; all mean "do not trust it"
        raise OidcError(f"The ID token was refused ({type(exc).__name__}).", "ID token không hợp lệ.") from None
    return map_claims(decoded.claims, web, issuer=meta["issuer"])


def map_claims(claims: dict[str, Any], web: WebSettings, *, issuer: str) -> Identity:
    """Role and units from the configured claims; refused when the role is missing or unknown."""
    try:
        role = Role(str(claims.get(web.oidc_role_claim) or ""))
    except ValueError:
        raise OidcError("Your single-sign-on account has no sohoa role; ask an administrator.",
                        "Tài khoản đăng nhập một lần chưa được gán vai trò trong sohoa; hãy hỏi quản trị viên.") from None
    units = claims.get(web.oidc_units_claim) or []
    if isinstance(units, str):
        units = [u for u in units.replace(",", " ").split() if u]
    name = str(claims.get(web.oidc_name_claim) or claims["sub"])
    return Identity(subject=f"{issuer}|{claims['sub']}", name=name, role=role, units=[str(u) for u in units])
