"""Delivering the outbox to the e-system's webhooks: CloudEvents JSON, signed the Standard Webhooks way.

At least once: a delivery is marked delivered only after the receiver answered 2xx, so a process
that dies mid-send sends it again after the lease (the receiver deduplicates by ``webhook-id``, the
event's ID, the same on every attempt). A receiver that is down or answers an error is tried again
after 5 s, 30 s, 2 min, 10 min, 30 min, then every hour, for 24 hours from the event
(``SOHOA_WEBHOOK_RETRY_SCALE`` shortens the steps, for tests). Events of one case are sent in order
(storage/outbox.py only hands out the first undelivered event of a subscription and case).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import sqlalchemy as sa

from storage import outbox
from storage.webhooks import sign

log = logging.getLogger(__name__)
BACKOFF = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0)
TIMEOUT = 10.0
USER_AGENT = "sohoa-webhooks/1"


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after ``attempts`` failed ones."""
    scale = float(os.environ.get("SOHOA_WEBHOOK_RETRY_SCALE", "1") or 1)
    return BACKOFF[min(max(attempts, 1), len(BACKOFF)) - 1] * scale


def cloud_event(delivery: outbox.Delivery) -> bytes:
    """The event as CloudEvents 1.0 JSON, structured mode (the same bytes on every attempt)."""
    event = {
        "specversion": "1.0", "id": delivery.event_id, "source": f"urn:sohoa:unit:{delivery.unit}",
        "type": delivery.type, "subject": delivery.case_id,
        "time": dt.datetime.fromtimestamp(delivery.created_at, dt.UTC).isoformat(timespec="milliseconds"),
        "datacontenttype": "application/json", "sequence": str(delivery.event_pk), "data": delivery.data,
    }
    return json.dumps(event, ensure_ascii=False, sort_keys=True).encode()


def send(delivery: outbox.Delivery, *, timeout: float = TIMEOUT) -> tuple[int | None, str]:
    """POST one delivery; (HTTP status or None, error text or "")."""
    body = cloud_event(delivery)
    msg_id = f"msg_{delivery.event_id}"
    stamp = int(time.time())
    request = urllib.request.Request(delivery.url, data=body, method="POST", headers={
        "Content-Type": "application/cloudevents+json; charset=utf-8", "User-Agent": USER_AGENT,
        "webhook-id": msg_id, "webhook-timestamp": str(stamp),
        "webhook-signature": sign(delivery.secret, msg_id, stamp, body)})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked at add
            return response.status, ""
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return None, str(reason).splitlines()[0][:200] if str(reason) else type(exc).__name__


@dataclass
class PassResult:
    """What one delivery pass did."""

    sent: int = 0
    failed: int = 0
    expired: int = 0


def deliver_once(engine: sa.Engine, *, owner: str | None = None, stop: threading.Event | None = None,
                 max_rounds: int = 1000) -> PassResult:
    """Send every delivery due now (in order per case) until none is left or ``stop`` is set."""
    owner = owner or f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"
    result = PassResult()
    for _ in range(max_rounds):
        batch = outbox.claim(engine, owner, lease=float(os.environ.get("SOHOA_WEBHOOK_LEASE", "60") or 60), limit=5)
        if not batch:
            break
        for delivery in batch:
            if stop is not None and stop.is_set():
                return result  # the claimed rest go back to the queue when their lease ends
            status, error = send(delivery)
            if status is not None and 200 <= status < 300:
                outbox.delivered(engine, delivery, status=status)
                result.sent += 1
                continue
            state = outbox.failed(engine, delivery, status=status, error=error or f"HTTP {status}",
                                  retry_in=retry_delay(delivery.attempts + 1))
            result.failed += 1
            result.expired += state == outbox.EXPIRED
            log.info("webhook %s: %s of %s not delivered (%s)", delivery.webhook_id, delivery.type,
                     delivery.case_id, error or status)
    return result


class DeliveryWorker:
    """A daemon thread that delivers the outbox every ``interval`` seconds until stopped."""

    def __init__(self, engine: sa.Engine, *, interval: float = 1.0) -> None:
        self.engine = engine
        self.interval = interval
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="sohoa-webhooks", daemon=True)

    def start(self) -> DeliveryWorker:
        self.thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)

    def _run(self) -> None:
        while not self.stop_event.is_set():
            try:
                deliver_once(self.engine, stop=self.stop_event)
            except Exception as exc:  # noqa: BLE001 - the database may be away a moment; try again later
                log.warning("webhook delivery pass failed: %s", str(exc).splitlines()[0])
            self.stop_event.wait(self.interval)
