"""The event outbox: what happened to a job or a document, and its deliveries to each webhook.

``emit`` is called where the state changes (the scan job store, the intake's store step, the
signing step). It writes the event and one delivery row per matching subscription of the event's
unit in one transaction, and never raises: a failed insert is logged and intake carries on (the
e-system can still read the API). Delivery is asynchronous (flows/webhook_delivery.py): a row is
claimed with a lease, so two delivering processes never send it at once, and a row is only due
when every earlier row of the same subscription and case has been delivered (or given up after
24 h), so a receiver sees a case's events in order.
"""
from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from models.policy import unit_of
from storage.webhooks import metadata, webhooks

log = logging.getLogger(__name__)
RETRY_FOR = 24 * 3600.0  # a delivery is retried this long after its event, then given up ("expired")
PENDING, DELIVERED, EXPIRED, CANCELLED = "pending", "delivered", "expired", "cancelled"

outbox_events = sa.Table(
    "outbox_events", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("unit", sa.String(16)),
    sa.Column("case_id", sa.String(64)),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.Float(), nullable=False),
)
webhook_deliveries = sa.Table(
    "webhook_deliveries", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("webhook_id", sa.String(40), sa.ForeignKey("webhooks.id"), nullable=False),
    sa.Column("event_pk", sa.Integer(), sa.ForeignKey("outbox_events.id"), nullable=False),
    sa.Column("order_key", sa.String(80), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.Float(), nullable=False),
    sa.Column("expires_at", sa.Float(), nullable=False),
    sa.Column("last_status", sa.Integer()),
    sa.Column("last_error", sa.Text()),
    sa.Column("delivered_at", sa.Float()),
    sa.Column("lease_owner", sa.String(128)),
    sa.Column("lease_until", sa.Float()),
)


@dataclass(frozen=True)
class Delivery:
    """One event to send to one subscription, as claimed by a delivering process."""

    id: int
    event_pk: int
    event_id: str
    type: str
    unit: str
    case_id: str | None
    data: dict[str, Any]
    created_at: float
    attempts: int
    expires_at: float
    webhook_id: str
    url: str
    secret: str


def emit(engine: sa.Engine, event_type: str, *, case_id: str | None, data: dict[str, Any],
         order_key: str | None = None) -> str | None:
    """Record one event of ``case_id``'s unit and queue it for that unit's subscriptions; never raises.

    Returns the event ID, or None when no subscription wants it or it could not be recorded (logged).
    """
    unit = unit_of(case_id)
    if unit is None:
        return None  # a case without a unit (a provisional ID) has no subscriber: nothing to tell
    event_id = str(uuid.uuid4())
    now = time.time()
    try:
        with engine.begin() as conn:
            hooks = [h.id for h in conn.execute(sa.select(webhooks.c.id, webhooks.c.events).where(
                webhooks.c.unit == unit, webhooks.c.active.is_(True))).all() if event_type in (h.events or ())]
            if not hooks:
                return None  # nobody listens: no row (the outbox does not grow on installs without webhooks)
            pk = conn.execute(outbox_events.insert().values(
                event_id=event_id, type=event_type, unit=unit, case_id=case_id, data=data, created_at=now)
                .returning(outbox_events.c.id)).scalar_one()
            conn.execute(webhook_deliveries.insert(), [
                {"webhook_id": h, "event_pk": pk, "order_key": (order_key or case_id or "")[:80], "status": PENDING,
                 "attempts": 0, "next_attempt_at": now, "expires_at": now + RETRY_FOR} for h in hooks])
    except Exception as exc:  # noqa: BLE001 - telling the e-system must never stop intake
        log.warning("webhook event %s of %s not recorded: %s", event_type, case_id, str(exc).splitlines()[0])
        return None
    return event_id


def claim(engine: sa.Engine, owner: str, *, lease: float = 60.0, limit: int = 20,
          now: float | None = None) -> list[Delivery]:
    """Take up to ``limit`` due deliveries, each the first undelivered one of its subscription and case."""
    now = time.time() if now is None else now
    d, e = webhook_deliveries.alias("d"), webhook_deliveries.alias("e")
    earlier = sa.select(e.c.id).where(e.c.webhook_id == d.c.webhook_id, e.c.order_key == d.c.order_key,
                                      e.c.event_pk < d.c.event_pk, e.c.status == PENDING)
    due = (sa.select(d.c.id).where(d.c.status == PENDING, d.c.next_attempt_at <= now,
                                   sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now),
                                   ~sa.exists(earlier))
           .order_by(d.c.event_pk).limit(limit))
    out: list[Delivery] = []
    with engine.begin() as conn:
        ids = conn.execute(due).scalars().all()
        for did in ids:
            got = conn.execute(webhook_deliveries.update().where(
                webhook_deliveries.c.id == did, webhook_deliveries.c.status == PENDING,
                sa.or_(webhook_deliveries.c.lease_until.is_(None), webhook_deliveries.c.lease_until < now))
                .values(lease_owner=owner, lease_until=now + lease)).rowcount
            if not got:
                continue
            row = conn.execute(
                sa.select(webhook_deliveries, outbox_events.c.event_id, outbox_events.c.type, outbox_events.c.unit,
                          outbox_events.c.case_id, outbox_events.c.data, outbox_events.c.created_at,
                          webhooks.c.url, webhooks.c.secret, webhooks.c.active)
                .join(outbox_events, outbox_events.c.id == webhook_deliveries.c.event_pk)
                .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
                .where(webhook_deliveries.c.id == did)).one()
            if not row.active:  # the subscription was removed: its queue is dropped, the log kept
                conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == did)
                             .values(status=CANCELLED, lease_owner=None, lease_until=None))
                continue
            out.append(Delivery(id=did, event_pk=row.event_pk, event_id=row.event_id, type=row.type, unit=row.unit,
                                case_id=row.case_id, data=dict(row.data or {}), created_at=row.created_at,
                                attempts=row.attempts, expires_at=row.expires_at, webhook_id=row.webhook_id,
                                url=row.url, secret=row.secret))
    return out


def delivered(engine: sa.Engine, delivery: Delivery, *, status: int) -> None:
    with engine.begin() as conn:
        conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == delivery.id).values(
            status=DELIVERED, attempts=delivery.attempts + 1, last_status=status, last_error=None,
            delivered_at=time.time(), lease_owner=None, lease_until=None))


def failed(engine: sa.Engine, delivery: Delivery, *, status: int | None, error: str, retry_in: float) -> str:
    """Record a failed attempt: due again in ``retry_in`` seconds, or given up past 24 h; returns the status."""
    now = time.time()
    state = EXPIRED if now + retry_in > delivery.expires_at else PENDING
    with engine.begin() as conn:
        conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == delivery.id).values(
            status=state, attempts=delivery.attempts + 1, last_status=status, last_error=error[:500],
            next_attempt_at=now + retry_in, lease_owner=None, lease_until=None))
    return state


def delivery_log(engine: sa.Engine, *, webhook_id: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest deliveries (one row per subscription and event), for the admin page and the CLI."""
    q = (sa.select(webhook_deliveries.c.id, webhook_deliveries.c.webhook_id, webhook_deliveries.c.status,
                   webhook_deliveries.c.attempts, webhook_deliveries.c.last_status, webhook_deliveries.c.last_error,
                   webhook_deliveries.c.delivered_at, webhook_deliveries.c.next_attempt_at,
                   outbox_events.c.event_id, outbox_events.c.type, outbox_events.c.case_id,
                   outbox_events.c.created_at, webhooks.c.url)
         .join(outbox_events, outbox_events.c.id == webhook_deliveries.c.event_pk)
         .join(webhooks, webhooks.c.id == webhook_deliveries.c.webhook_id)
         .order_by(webhook_deliveries.c.id.desc()).limit(limit))
    if webhook_id:
        q = q.where(webhook_deliveries.c.webhook_id == webhook_id)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(q).all()]


def counts(engine: sa.Engine) -> dict[str, int]:
    """Deliveries by status (pending, delivered, expired, cancelled)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(webhook_deliveries.c.status, sa.func.count())
                            .group_by(webhook_deliveries.c.status)).all()
    return {status: int(n) for status, n in rows}
