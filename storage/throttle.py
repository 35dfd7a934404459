"""Counters for throttling, kept in the catalog database so every worker and replica shares them.

A counter counts hits of one key (``sign_in:name:user:lan``, ``refused:client:10.0.0.7``) in a
fixed window that starts at the window's first hit. ``hit`` counts and returns in ONE statement
(an UPDATE … RETURNING, or the INSERT of a new key), so twenty parallel requests get twenty
different counts: the check that follows cannot be raced the way "count the failures in the audit
trail, then check the password, then record the failure" was (issue 21: 20 parallel wrong
passwords all got 401).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

metadata = sa.MetaData()
throttle_counters = sa.Table(
    "throttle_counters", metadata,
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    sa.Column("hits", sa.Integer(), nullable=False),
    sa.Column("previous", sa.Integer(), nullable=False),  # hits of the window before, when this one began
    sa.Column("previous_start", sa.DateTime(timezone=True)),
)


@dataclass(frozen=True)
class Hit:
    """A hit's place in its window: the count including it, and what the previous window had left."""

    count: int
    window_start: dt.datetime
    previous: int  # hits of the window that ended just before this one started (0 when not just rolled over)
    previous_start: dt.datetime | None


class Throttle:
    """Atomic per-key counters in fixed windows."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def hit(self, key: str, *, window: dt.timedelta, now: dt.datetime | None = None) -> Hit:
        """Count one hit of ``key`` and return its count in the current window (atomic across processes)."""
        now = now or dt.datetime.now(dt.UTC)
        key = key[:200]
        cutoff = now - window
        t = throttle_counters
        fresh = t.c.window_start > cutoff
        for _ in range(3):  # a concurrent first INSERT of the same key: count again
            with self.engine.begin() as conn:
                row = conn.execute(
                    t.update().where(t.c.key == key).values(
                        # Every right-hand side reads the row as it was: one statement, one row lock.
                        hits=sa.case((fresh, t.c.hits + 1), else_=1),
                        previous=sa.case((fresh, 0), else_=t.c.hits),
                        previous_start=sa.case((fresh, t.c.previous_start), else_=t.c.window_start),
                        window_start=sa.case((fresh, t.c.window_start), else_=now),
                    ).returning(t.c.hits, t.c.window_start, t.c.previous, t.c.previous_start)).first()
                if row is not None:
                    return Hit(int(row.hits), _utc(row.window_start), int(row.previous),
                               _utc(row.previous_start) if row.previous and row.previous_start else None)
                try:
                    with conn.begin_nested():
                        conn.execute(t.insert().values(key=key, window_start=now, hits=1, previous=0,
                                                       previous_start=None))
                except sa.exc.IntegrityError:
                    continue
                return Hit(1, now, 0, None)
        raise RuntimeError(f"throttle counter {key!r} could not be updated")

    def release(self, key: str) -> None:
        """Take one hit back (an attempt that turned out legitimate, e.g. the right password)."""
        t = throttle_counters
        with self.engine.begin() as conn:
            conn.execute(t.update().where(t.c.key == key[:200], t.c.hits > 0).values(hits=t.c.hits - 1))

    def purge(self, *, older_than: dt.timedelta, now: dt.datetime | None = None) -> int:
        """Drop counters whose window began before ``now - older_than``."""
        now = now or dt.datetime.now(dt.UTC)
        with self.engine.begin() as conn:
            return conn.execute(throttle_counters.delete().where(
                throttle_counters.c.window_start < now - older_than)).rowcount


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
