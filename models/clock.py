"""The counters' clock: Vietnam time (UTC+07:00, no daylight saving since 1975), whatever the server's zone.

"Today at this counter", the times shown to people and the time in a signature are all Vietnam time,
so a server or container left on UTC does not start the counter's day at 07:00.
"""
from __future__ import annotations

import datetime as dt

VIETNAM = dt.timezone(dt.timedelta(hours=7), "+07:00")


def local_now() -> dt.datetime:
    return dt.datetime.now(VIETNAM)


def local_today() -> dt.date:
    return local_now().date()


def day_start(day: dt.date) -> float:
    """The epoch seconds of ``day``'s midnight in Vietnam."""
    return dt.datetime.combine(day, dt.time(), VIETNAM).timestamp()


def local_time(epoch_or_iso: float | str) -> dt.datetime:
    """An epoch time or an ISO 8601 time (naive = UTC) as Vietnam time."""
    if isinstance(epoch_or_iso, str):
        t = dt.datetime.fromisoformat(epoch_or_iso)
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.UTC)
    else:
        t = dt.datetime.fromtimestamp(epoch_or_iso, dt.UTC)
    return t.astimezone(VIETNAM)


def local_iso(value: float | str | dt.datetime | None) -> str | None:
    """A time as ISO 8601 in Vietnam time with its offset (``2026-11-29T10:32:05+07:00``), as every page shows it."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        value = value.isoformat() if value.tzinfo else value.replace(tzinfo=dt.UTC).isoformat()
    try:
        return local_time(value).isoformat(timespec="seconds")
    except ValueError:
        return str(value)  # not a time we can read: shown as recorded
