"""Vietnam time for the counters, whatever zone the server (or its container) runs in."""
from __future__ import annotations

import datetime as dt
import os
import time

import pytest

from models.clock import VIETNAM, day_start, local_time


@pytest.fixture()
def utc_server():
    """The process as a server left on UTC (the default of most containers)."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_the_counters_day_starts_at_midnight_in_vietnam(utc_server):
    assert day_start(dt.date(2026, 11, 30)) == dt.datetime(2026, 11, 29, 17, 0, tzinfo=dt.UTC).timestamp()
    # 00:30 in Hà Nội is still the previous day in UTC: it belongs to the 30th at the counter.
    assert local_time(dt.datetime(2026, 11, 29, 17, 30, tzinfo=dt.UTC).timestamp()).date() == dt.date(2026, 11, 30)
    assert local_time("2026-11-29T17:30:00").isoformat() == "2026-11-30T00:30:00+07:00"  # naive = UTC
    assert local_time("2026-11-30T00:30:00+07:00").utcoffset() == dt.timedelta(hours=7)


def test_web_pages_show_vietnam_time(utc_server):
    from web.routes.pages import when

    assert when("2026-11-29T18:05:00+00:00") == "30/11/2026 01:05"
    assert when(None) == "–" and when("not a time") == "not a time"


def test_todays_receipts_follow_the_vietnam_day(utc_server, tmp_path):
    """A job received at 00:30 Vietnam time (17:30 UTC the day before) is today's at the counter."""
    import sqlalchemy as sa

    from storage.config import Settings, open_catalog
    from storage.jobs import JobStore, scan_jobs

    settings = Settings.from_env({"SOHOA_DATA_DIR": str(tmp_path)})
    catalog = open_catalog(settings)
    store = JobStore(catalog, tmp_path / "jobs")
    scan = tmp_path / "a.png"
    scan.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    job = store.create([scan], case_id="000.00.14.H56-261130-0001", operator="mai.desk")
    early = dt.datetime(2026, 11, 29, 17, 30, tzinfo=dt.UTC).timestamp()
    with catalog.engine.begin() as conn:
        conn.execute(sa.update(scan_jobs).where(scan_jobs.c.id == job.id).values(created_at=early))
    day = dt.datetime.fromtimestamp(early, VIETNAM).date()
    assert store.todays_cases(units=["000.00.14.H56"], day=day) == ["000.00.14.H56-261130-0001"]
    assert [j.id for j in store.list_jobs(operator="mai.desk", since=day_start(day))] == [job.id]
    catalog.close()
