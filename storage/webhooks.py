"""Webhook subscriptions of the one-stop e-system, and their Standard Webhooks signatures.

A subscription is a URL, one unit and the events it wants. Its secret (``whsec_`` + base64 of 32
random bytes) is shown once when the subscription is made and kept in the catalog database for
signing; it is never printed again, logged or put in a URL. Signing follows the Standard Webhooks
specification: ``webhook-signature: v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`` keyed
with the secret's decoded bytes.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from models import StorageError
from models.policy import UNIT_PATTERN

EVENTS = ("job.checked", "job.waiting", "document.stored", "document.signed", "job.failed")
SECRET_PREFIX = "whsec_"

metadata = sa.MetaData()
webhooks = sa.Table(
    "webhooks", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("url", sa.Text(), nullable=False),
    sa.Column("unit", sa.String(16), nullable=False),
    sa.Column("events", sa.JSON(), nullable=False),
    sa.Column("secret", sa.Text(), nullable=False),
    sa.Column("created_by", sa.String(128)),
    sa.Column("created_at", sa.Float(), nullable=False),
    sa.Column("active", sa.Boolean(), nullable=False),
)


class WebhookError(StorageError):
    """A subscription that cannot be made as asked (bad URL, unit or event)."""

    exit_code = 2


@dataclass(frozen=True)
class Webhook:
    """One subscription; the secret is left out of its text form so it never reaches a log."""

    id: str
    url: str
    unit: str
    events: tuple[str, ...]
    created_at: float
    active: bool = True
    created_by: str | None = None
    secret: str = field(default="", repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain form for listings (no secret)."""
        return {"id": self.id, "url": self.url, "unit": self.unit, "events": list(self.events),
                "created_at": self.created_at, "active": self.active, "created_by": self.created_by}


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header value for one message (Standard Webhooks, v1)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def parse_events(text: str | list[str] | None) -> tuple[str, ...]:
    """The events asked for (comma list or ``all``), each checked against ``EVENTS``."""
    items = text if isinstance(text, list) else (text or "all").split(",")
    names = [n.strip() for n in items if n.strip()]
    if not names or names == ["all"]:
        return EVENTS
    unknown = [n for n in names if n not in EVENTS]
    if unknown:
        raise WebhookError(f"Unknown webhook events {unknown}: choose from {', '.join(EVENTS)} or all.",
                           f"Sự kiện không có: {', '.join(unknown)}; chọn trong {', '.join(EVENTS)} hoặc all.")
    return tuple(n for n in EVENTS if n in names)


def _check(url: str, unit: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise WebhookError(f"{url!r} is not an http(s) URL without credentials.",
                           "Địa chỉ webhook phải là URL http(s), không chứa tên/mật khẩu.")
    if not UNIT_PATTERN.fullmatch(unit):
        raise WebhookError(f"{unit!r} is not a unit (agency code such as 000.00.14.H56).",
                           f"{unit!r} không phải mã đơn vị (ví dụ 000.00.14.H56).")


class Webhooks:
    """The subscriptions table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(self, url: str, *, unit: str, events: tuple[str, ...] = EVENTS,
            created_by: str | None = None) -> tuple[Webhook, str]:
        """Subscribe ``url`` to ``unit``'s events; returns the subscription and its secret (shown once)."""
        _check(url, unit)
        hook = Webhook(id="wh_" + secrets.token_hex(8), url=url, unit=unit, events=tuple(events),
                       created_at=time.time(), created_by=created_by, secret=new_secret())
        with self.engine.begin() as conn:
            conn.execute(webhooks.insert().values(id=hook.id, url=url, unit=unit, events=list(hook.events),
                                                  secret=hook.secret, created_by=created_by,
                                                  created_at=hook.created_at, active=True))
        return hook, hook.secret

    def list(self, *, active_only: bool = True) -> list[Webhook]:
        with self.engine.connect() as conn:
            q = sa.select(webhooks).order_by(webhooks.c.created_at)
            rows = conn.execute(q.where(webhooks.c.active.is_(True)) if active_only else q).all()
        return [_hook(r) for r in rows]

    def get(self, hook_id: str) -> Webhook | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(webhooks).where(webhooks.c.id == hook_id)).first()
        return None if row is None else _hook(row)

    def remove(self, hook_id: str) -> bool:
        """Stop a subscription (its delivery log stays); False when there is no such active one."""
        with self.engine.begin() as conn:
            done = conn.execute(webhooks.update().where(webhooks.c.id == hook_id, webhooks.c.active.is_(True))
                                .values(active=False)).rowcount
        return bool(done)


def _hook(row: sa.Row) -> Webhook:
    return Webhook(id=row.id, url=row.url, unit=row.unit, events=tuple(row.events or ()), created_at=row.created_at,
                   active=bool(row.active), created_by=row.created_by, secret=row.secret)
