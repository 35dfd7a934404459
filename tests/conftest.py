"""Shared fixtures: one Prefect test server per session, a fresh data directory per test, sample pages."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

pytest_plugins = ["tests.servers", "tests.web_fixtures"]

os.environ.setdefault("OMP_THREAD_LIMIT", "1")

# No test may write into the real per-user data directory (~/.local/share/sohoa) or into a
# SOHOA_DATA_DIR the developer set in their shell: point both at a throw-away folder for the whole
# session. Tests that store anything use the ``data_dir`` fixture, which gives each a fresh folder.
_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="sohoa-tests-"))
os.environ["XDG_DATA_HOME"] = str(_SESSION_ROOT / "xdg-data")
os.environ["SOHOA_DATA_DIR"] = str(_SESSION_ROOT / "session-data")


@pytest.fixture(scope="session")
def prefect_harness():
    """A real Prefect API (temporary server, SQLite) for the whole session; flows run against it."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """SOHOA_DATA_DIR pointing at a fresh folder: local object store and SQLite catalog."""
    d = tmp_path / "sohoa-data"
    monkeypatch.setenv("SOHOA_DATA_DIR", str(d))
    for var in ("SOHOA_S3_ENDPOINT", "SOHOA_DATABASE_URL"):
        monkeypatch.delenv(var, raising=False)
    return d


@pytest.fixture(scope="session")
def sample_dossier(tmp_path_factory) -> list[Path]:
    """The demo's three scanned-looking pages: [multi-page TIFF, page1.jpg, page2.jpg, page3.jpg]."""
    from pipeline.sample import make_sample_dossier

    return make_sample_dossier(tmp_path_factory.mktemp("sample"))
