"""Webhooks to the one-stop e-system (issue 20, item 5), against a real HTTP receiver on loopback.

A 3-case run (the intake flow on real Prefect, and scan jobs changing state in the job store) queues
its events in the outbox; the receiver is down at first, answers errors when it comes up, goes down
again, and the delivering process (``sohoa serve``) is killed and started again. The receiver checks
every Standard Webhooks signature itself; after dedup by ``webhook-id`` it has every event of its unit
exactly once, in order per case, and none of another unit.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from cli.main import main
from tests.servers import free_port
from tests.web_fixtures import ROOT, WebServer

UNIT, OTHER = "000.00.01.H56", "000.00.02.H56"
CASES = ["000.00.01.H56-181010-0001", "000.00.01.H56-181010-0002", "000.00.01.H56-181010-0003"]
OTHER_CASE = "000.00.02.H56-181010-0009"


class Receiver:
    """An e-system's endpoint: verifies each signature, keeps what it got; can fail its first answers."""

    def __init__(self, port: int, secret: str, *, fail_first: int = 0) -> None:
        self.port, self.key = port, base64.b64decode(secret.removeprefix("whsec_"))
        self.fail_left = fail_first
        self.received: list[tuple[str, dict]] = []  # (webhook-id, CloudEvent) of every accepted request
        self.bad_signatures = 0
        self.lock = threading.Lock()
        self.server: HTTPServer | None = None

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                msg_id, stamp = self.headers["webhook-id"], self.headers["webhook-timestamp"]
                expected = base64.b64encode(hmac.new(receiver.key, f"{msg_id}.{stamp}.".encode() + body,
                                                     hashlib.sha256).digest()).decode()
                given = [s.split(",", 1)[1] for s in self.headers["webhook-signature"].split() if s.startswith("v1,")]
                with receiver.lock:
                    if not any(hmac.compare_digest(expected, g) for g in given) or abs(time.time() - int(stamp)) > 300:
                        receiver.bad_signatures += 1
                        self.send_response(401)
                    elif receiver.fail_left > 0:
                        receiver.fail_left -= 1
                        self.send_response(503)
                    else:
                        assert self.headers["Content-Type"].startswith("application/cloudevents+json")
                        receiver.received.append((msg_id, json.loads(body)))
                        self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def ids(self) -> list[str]:
        with self.lock:
            return [i for i, _ in self.received]


def wait_for(predicate, what: str, timeout: float = 240.0) -> None:  # type: ignore[no-untyped-def]
    """Wait until ``predicate()`` holds (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


def add_hook(url: str, unit: str, capsys) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    assert main(["webhook", "add", url, "--unit", unit, "--events", "all"]) == 0
    captured = capsys.readouterr()
    secret = captured.out.strip()
    assert secret.startswith("whsec_") and "một lần" in captured.err
    hook_id = captured.err.split()[1].rstrip(":")
    return hook_id, secret


def deliver_pass(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``sohoa webhook deliver``: one pass, in its own process."""
    return subprocess.run([sys.executable, "-m", "cli", "webhook", "deliver"], cwd=ROOT, text=True,
                          capture_output=True, env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, timeout=120)


def log_rows(hook_id: str, capsys) -> list[dict]:  # type: ignore[no-untyped-def]
    """``sohoa webhook log ID --json``'s deliveries."""
    capsys.readouterr()
    assert main(["webhook", "log", hook_id, "--limit", "500", "--json"]) == 0
    return json.loads(capsys.readouterr().out)["deliveries"]


def unit_events(engine, unit: str) -> list[tuple[int, str, str, str]]:  # type: ignore[no-untyped-def]
    import sqlalchemy as sa

    from storage.outbox import outbox_events

    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox_events.c.id, outbox_events.c.event_id, outbox_events.c.type,
                                      outbox_events.c.case_id).where(outbox_events.c.unit == unit)
                            .order_by(outbox_events.c.id)).all()
    return [tuple(r) for r in rows]


def test_every_event_of_a_3_case_run_arrives_once_across_an_outage_and_a_restart(
        prefect_harness, data_dir, sample_dossier, capsys):
    from flows.desk import intake
    from flows.service import open_job_store
    from models.jobs import CHECKED, FAILED, RECEIVED, WAITING
    from pipeline import keyring
    from storage.outbox import counts

    keyring.init_test_keys(keyring.keys_dir_for(data_dir, env={}), operator="an")
    port, other_port = free_port(), free_port()
    hook_id, secret = add_hook(f"http://127.0.0.1:{port}/sohoa", UNIT, capsys)
    _other_id, other_secret = add_hook(f"http://127.0.0.1:{other_port}/hook", OTHER, capsys)
    jobs = open_job_store()
    engine = jobs.catalog.engine

    # The run, with the receiver down: each case is uploaded as a job, checked, stored and signed;
    # one case waits once (a failure of ours) before it is stored.
    for n, case in enumerate(CASES):
        job = jobs.create([sample_dossier[n + 1]], case_id=case, operator="an")
        jobs.update(job.id, status=CHECKED)
        if n == 1:
            jobs.update(job.id, status=WAITING)
        [report] = intake(files=[str(sample_dossier[n + 1])], case_id=case, kind="Đơn đề nghị", operator="an")
        assert report["status"] == "stored" and report["signing"]["status"] == "signed"
    other = jobs.create([sample_dossier[1]], case_id=OTHER_CASE, operator="binh")
    jobs.update(other.id, status=RECEIVED)  # no event for this status
    jobs.update(other.id, status=FAILED, error={"message_vi": "Tệp hỏng"})

    env = {"SOHOA_DATA_DIR": str(data_dir), "SOHOA_WEBHOOK_RETRY_SCALE": "0.002", "SOHOA_WEBHOOK_LEASE": "3"}
    down = deliver_pass(env)
    assert down.returncode == 0 and "Đã gửi 0" in down.stdout, down.stdout + down.stderr
    expected = unit_events(engine, UNIT)
    assert [t for _, _, t, _ in expected].count("document.stored") == 3
    assert {t for _, _, t, _ in expected} == {"job.checked", "job.waiting", "document.stored", "document.signed"}

    # The receiver comes up, failing its first answers; a web app delivers, is killed mid-run and restarted.
    receiver = Receiver(port, secret, fail_first=2).start()
    other_receiver = Receiver(other_port, other_secret).start()
    server = WebServer(env=env)
    server.start()
    try:
        wait_for(lambda: len(receiver.ids()) >= 3, "the first events")
        server.process.send_signal(signal.SIGKILL)
        server.process.wait(10)
        receiver.stop()  # an outage while nobody delivers, and events keep coming
        late = jobs.create([sample_dossier[1]], case_id=CASES[0], operator="an")
        jobs.update(late.id, status=FAILED, error={"message_vi": "Không đọc được tệp"})
        assert deliver_pass(env).returncode == 0  # tried while the receiver is down: nothing lost
        receiver.fail_left = 1  # back up, with one more error before it answers well
        receiver.start()
        server = WebServer(env=env)
        server.start()
        expected = unit_events(engine, UNIT)
        wait_for(lambda: {f"msg_{e}" for _, e, _, _ in expected} <= set(receiver.ids()), "every event")
        wait_for(lambda: counts(engine).get("pending", 0) == 0, "no delivery pending")
    finally:
        server.stop()
        receiver.stop()
        other_receiver.stop()

    got = receiver.ids()
    unique = {f"msg_{e}" for _, e, _, _ in expected}
    assert set(got) == unique and receiver.bad_signatures == 0
    assert all(e["data"].get("case_id") in CASES and e["subject"] in CASES for _, e in receiver.received)
    # In order per case: each case's events, deduplicated in the order they first arrived, follow the outbox.
    for case in CASES:
        arrived = list(dict.fromkeys(int(e["sequence"]) for _, e in receiver.received if e["subject"] == case))
        assert arrived == [pk for pk, _, _, c in expected if c == case], case
    # The other unit's receiver got its own job.failed and nothing of unit 01.
    assert [e["type"] for _, e in other_receiver.received] == ["job.failed"]
    assert {e["subject"] for _, e in other_receiver.received} == {OTHER_CASE}
    figures = {"events": len(unique), "received": len(got), "duplicates": len(got) - len(set(got)),
               "lost": len(unique - set(got))}
    figures["attempts"] = sum(r["attempts"] for r in log_rows(hook_id, capsys))
    with capsys.disabled():
        print("\nwebhook delivery figures:", figures)
    assert figures["lost"] == 0

    # The log shows the deliveries; no command prints the secret again.
    log = log_rows(hook_id, capsys)
    assert {r["status"] for r in log} == {"delivered"} and len(log) == len(unique)
    assert any(r["attempts"] > 1 for r in log)  # the outage was retried, not skipped
    assert main(["webhook", "list"]) == 0
    listing = capsys.readouterr().out
    assert hook_id in listing and secret not in listing and secret not in json.dumps(log)
    assert secret not in Path(server.log).read_text()
    assert main(["webhook", "remove", hook_id]) == 0 and main(["webhook", "remove", hook_id]) == 2
    capsys.readouterr()
