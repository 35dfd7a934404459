"""Fixtures for the web tests: a data folder holding the sample dossier (ingested once per session
through the intake flow's own tasks), accounts, and ``sohoa serve`` running in a subprocess on a
free loopback port. Loaded as a pytest plugin from tests/conftest.py.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
CASE_A = "000.00.14.H56-181010-0001"   # unit 000.00.14.H56: the three-page sample dossier
CASE_B = "000.00.22.H56-181011-0002"   # unit 000.00.22.H56: page 2 of the sample alone
PASSWORD = "mat-khau-thu-nghiem"
USERS = {  # name: (role, units)
    "lan": ("handler", ["000.00.14.H56"]),
    "minh": ("handler", ["000.00.22.H56"]),
    "thu": ("archivist", ["000.00.14.H56"]),
    "quan": ("admin", []),
    "hoa": ("operator", ["000.00.14.H56"]),
    "vy": ("handler", ["000.00.14.H56"]),    # is disabled by a test
    "khoa": ("handler", ["000.00.14.H56"]),  # its sign-ins are throttled by a test
}


@contextmanager
def env(**values: str) -> Iterator[None]:
    """Set environment variables for the block (the flows' tasks read their settings from it)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def ingest(path: Path, case_id: str, *, kind: str, operator: str, work: Path) -> dict:
    """One file → one stored, catalogued document, through the intake flow's task functions."""
    from flows.intake import IntakeRequest, process, store_original, store_results
    from pipeline.reader import sha256_of

    request = IntakeRequest(path=str(path), case_id=case_id, kind=kind, operator=operator)
    sha = sha256_of(path)
    original = store_original.fn(request, sha)
    processed = process.fn(request, sha, str(work / sha[:8]), 2, False)
    return store_results.fn(request, processed, original["key"])


def seed(data_dir: Path, sample: list[Path], *, extra_env: dict[str, str] | None = None,
         documents: list[tuple[int, str, str, str]] | None = None) -> dict[str, str]:
    """Ingest the sample into two cases of two units and create the test accounts; returns the env used.

    ``documents``: (index into ``sample``, case ID, kind, operator) to ingest instead of the default two.
    """
    values = {"SOHOA_DATA_DIR": str(data_dir), **(extra_env or {})}
    documents = documents or [(0, CASE_A, "Đơn đề nghị", "hoa.tran"), (2, CASE_B, "Quyết định", "binh.le")]
    with env(**values):
        from storage.accounts import Accounts
        from storage.config import Settings, open_catalog

        work = data_dir / "work"
        for index, case_id, kind, operator in documents:
            ingest(sample[index], case_id, kind=kind, operator=operator, work=work)
        if any(case_id == CASE_A for _, case_id, _, _ in documents):
            # CASE_A's document carries the agency's (TEST) signature, CASE_B's is left "chưa ký số".
            from flows.signing import sign_stored
            from pipeline.keyring import init_test_keys, keys_dir_for

            init_test_keys(keys_dir_for(data_dir), operator="hoa.tran")
            catalog = open_catalog(Settings.from_env())
            [(case_a, doc_a)] = [(c, d) for c, d in catalog.unsigned_documents() if c == CASE_A]
            catalog.close()
            sign_stored(case_a, doc_a)
        catalog = open_catalog(Settings.from_env())
        accounts = Accounts(catalog.engine)
        for name, (role, units) in USERS.items():
            accounts.add_user(name, role=role, units=units, password=PASSWORD)
        catalog.close()
    return values


@dataclass
class WebServer:
    """``python -m cli serve`` in a subprocess."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> None:
        # The desk's intake service (issue 12) is not started by these servers unless a test asks for it.
        # The suite's servers all answer 127.0.0.1: the per-address throttle of unauthenticated refusals'
        # audit rows (5 a minute by default) would drop the very rows some tests look for, depending on
        # which tests ran just before. tests/test_security_probe.py tests the throttle on its own server.
        full = {**os.environ, "SOHOA_INTAKE_SERVICE": "0", "SOHOA_WEB_REFUSAL_ROWS": "100000", **self.env,
                "PYTHONPATH": str(ROOT)}
        self.log = Path(self.env["SOHOA_DATA_DIR"]) / f"web-{self.port}.log"
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(self.port)],
                                            cwd=ROOT, env=full, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sohoa serve exited: {self.log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/sign-in", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"sohoa serve did not answer: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="session")
def web_data(tmp_path_factory, sample_dossier) -> dict[str, str]:
    """A data folder (local store + SQLite) with CASE_A and CASE_B stored and the test users."""
    return seed(tmp_path_factory.mktemp("web") / "sohoa-data", sample_dossier)


@pytest.fixture(scope="session")
def web_server(web_data) -> Iterator[WebServer]:
    """``sohoa serve`` on the seeded data, for the whole session."""
    server = WebServer(env=web_data)
    server.start()
    yield server
    server.stop()


@contextmanager
def signed_in(base_url: str, name: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    """An httpx client with a session cookie for ``name`` (signed in through the form, CSRF included)."""
    import re

    import httpx

    client = httpx.Client(base_url=base_url, timeout=60)
    page = client.get("/sign-in")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/sign-in", data={"name": name, "password": password, "csrf": csrf, "next": "/search"})
    assert r.status_code == 303, (r.status_code, r.text[:300])
    try:
        yield client
    finally:
        client.close()


def run_cli(env_values: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m cli ARGS`` on the same data as the server."""
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, input=stdin, text=True,
                          capture_output=True, env={**os.environ, **env_values, "PYTHONPATH": str(ROOT)}, timeout=120)


CHROMIUM = "/usr/bin/chromium"  # Debian's package (browser downloads are not possible here)
ARTIFACTS = Path(__file__).parent / "artifacts"  # screenshots of the browser tests (git-ignored)
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    """Headless Debian chromium driven by Playwright, one per test module (skips, saying why, without it)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not shutil.which(CHROMIUM):
        pytest.skip(f"{CHROMIUM} not installed (apt-get install chromium; scripts/bootstrap.sh --test does it)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()
