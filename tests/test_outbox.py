"""The webhook outbox on its own (SQLite and PostgreSQL): order per case, giving up after 24 h, never blocking intake."""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from storage import outbox
from storage.webhooks import Webhooks, WebhookError, parse_events, sign

CASE, OTHER_CASE = "000.00.01.H56-181010-0001", "000.00.01.H56-181010-0002"


@pytest.fixture
def engine(catalog_url):
    from storage.catalog import Catalog

    catalog = Catalog(catalog_url)
    catalog.migrate()
    yield catalog.engine
    catalog.close()


@pytest.fixture
def local_engine(data_dir):
    from storage.config import Settings, open_catalog

    catalog = open_catalog(Settings.from_env())
    yield catalog.engine
    catalog.close()


def test_a_case_waits_for_its_earlier_event_and_others_do_not(engine):
    hook, _secret = Webhooks(engine).add("http://127.0.0.1:9/x", unit="000.00.01.H56")
    first = outbox.emit(engine, "job.checked", case_id=CASE, data={})
    second = outbox.emit(engine, "document.stored", case_id=CASE, data={})
    third = outbox.emit(engine, "job.checked", case_id=OTHER_CASE, data={})
    assert outbox.emit(engine, "job.checked", case_id="000.00.02.H56-181010-0001", data={}) is None  # no hook
    batch = outbox.claim(engine, "a")
    assert [d.event_id for d in batch] == [first, third] and {d.webhook_id for d in batch} == {hook.id}
    assert outbox.claim(engine, "b") == []  # leased, and the second waits for the first
    outbox.failed(engine, batch[0], status=503, error="HTTP 503", retry_in=0.0)
    outbox.delivered(engine, batch[1], status=204)
    again = outbox.claim(engine, "b")
    assert [d.event_id for d in again] == [first] and again[0].attempts == 1
    outbox.delivered(engine, again[0], status=200)
    assert [d.event_id for d in outbox.claim(engine, "c")] == [second]


def test_a_delivery_is_given_up_after_24_hours_and_the_case_moves_on(engine):
    Webhooks(engine).add("http://127.0.0.1:9/x", unit="000.00.01.H56")
    outbox.emit(engine, "job.checked", case_id=CASE, data={})
    later = outbox.emit(engine, "job.failed", case_id=CASE, data={})
    [d] = outbox.claim(engine, "a")
    assert outbox.failed(engine, d, status=None, error="down", retry_in=25 * 3600) == outbox.EXPIRED
    assert [x.event_id for x in outbox.claim(engine, "a")] == [later]
    assert outbox.counts(engine) == {"expired": 1, "pending": 1}


def test_an_outbox_that_cannot_be_written_does_not_stop_a_job(local_engine, data_dir, sample_dossier, caplog):
    from flows.service import open_job_store
    from models.jobs import CHECKED

    Webhooks(local_engine).add("http://127.0.0.1:9/x", unit="000.00.01.H56")
    with local_engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE webhook_deliveries"))
    jobs = open_job_store()
    job = jobs.create([sample_dossier[1]], case_id=CASE, operator="an")
    jobs.update(job.id, status=CHECKED)
    assert jobs.get(job.id).status == CHECKED
    assert "not recorded" in caplog.text


def test_subscriptions_check_their_input_and_sign_like_standard_webhooks(engine):
    with pytest.raises(WebhookError):
        Webhooks(engine).add("ftp://example.org/x", unit="000.00.01.H56")
    with pytest.raises(WebhookError):
        Webhooks(engine).add("http://user:pw@example.org/x", unit="000.00.01.H56")
    with pytest.raises(WebhookError):
        parse_events("document.deleted")
    assert parse_events("document.signed, job.failed") == ("document.signed", "job.failed")
    hook, secret = Webhooks(engine).add("https://egov.example/hook", unit="000.00.01.H56")
    assert secret.startswith("whsec_") and secret not in repr(hook) and "secret" not in hook.to_dict()
    # The Standard Webhooks specification's published test vector: a receiver's library accepts ours.
    assert sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
                b'{"test": 2432232314}') == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
