"""Storage settings from the environment (SOHOA_*), and the functions that open the store and catalog."""
from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: `sohoa pdf` and `--help` need neither SQLAlchemy nor Alembic
    from storage.catalog import Catalog
    from storage.objectstore import ObjectStore

_TRUE = {"1", "true", "yes", "on"}
LEGACY_DATA_DIR = "sohoa-data"  # the old default, relative to the current folder


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """One fixed place per user, whatever the current folder: ``$XDG_DATA_HOME/sohoa``, else ``~/.local/share/sohoa``."""
    env = os.environ if env is None else env
    xdg = env.get("XDG_DATA_HOME")
    if xdg and Path(xdg).is_absolute():  # the XDG spec: a relative value is invalid and ignored
        return Path(xdg) / "sohoa"
    home = env.get("HOME")
    return (Path(home) if home else Path.home()) / ".local" / "share" / "sohoa"


def data_dir_source(env: Mapping[str, str] | None = None) -> str:
    """Where the data directory comes from: ``SOHOA_DATA_DIR`` or the per-user default."""
    env = os.environ if env is None else env
    return "SOHOA_DATA_DIR" if env.get("SOHOA_DATA_DIR") else "default"


def legacy_data_dir(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> Path | None:
    """An old ``./sohoa-data`` in the current folder that is not the data directory in use, or None."""
    cwd = Path.cwd() if cwd is None else Path(cwd)
    old = (cwd / LEGACY_DATA_DIR)
    if not old.is_dir():
        return None
    if old.resolve() == Settings.from_env(env).data_dir:
        return None
    return old.resolve()


@dataclass(frozen=True)
class Settings:
    """Where documents and the catalog live; the local folder is used when no S3 endpoint is set."""

    data_dir: Path
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    s3_bucket: str = "sohoa"
    s3_secure: bool = False
    s3_object_lock: bool = False
    database_url: str = ""

    def __repr__(self) -> str:  # never print the secret key
        return (f"Settings(data_dir={str(self.data_dir)!r}, s3_endpoint={self.s3_endpoint!r}, "
                f"s3_bucket={self.s3_bucket!r}, database_url={self.database_url.split('@')[-1]!r})")

    def describe(self) -> dict[str, str]:
        """Where things are, for ``sohoa info``: never a key, a password or a token."""
        if self.s3_endpoint:
            scheme = "https" if self.s3_secure else "http"
            endpoint = self.s3_endpoint if "://" in self.s3_endpoint else f"{scheme}://{self.s3_endpoint}"
            store = f"S3 {_without_credentials(endpoint)} bucket {self.s3_bucket}"
        else:
            store = f"local folder {self.data_dir / 'objects'}"
        import sqlalchemy as sa

        try:
            catalog = sa.engine.make_url(self.database_url).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL is shown without anything after '@'
            catalog = "…@" + self.database_url.split("@")[-1]
        return {"data_dir": str(self.data_dir), "store": store, "catalog": catalog}

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read SOHOA_DATA_DIR, SOHOA_S3_* and SOHOA_DATABASE_URL (``env`` defaults to os.environ)."""
        env = os.environ if env is None else env
        data_dir = Path(env.get("SOHOA_DATA_DIR") or default_data_dir(env)).expanduser().resolve()
        return cls(
            data_dir=data_dir,
            s3_endpoint=env.get("SOHOA_S3_ENDPOINT") or None,
            s3_access_key=env.get("SOHOA_S3_ACCESS_KEY") or None,
            s3_secret_key=env.get("SOHOA_S3_SECRET_KEY") or None,
            s3_bucket=env.get("SOHOA_S3_BUCKET") or "sohoa",
            s3_secure=(env.get("SOHOA_S3_SECURE") or "false").strip().lower() in _TRUE,
            s3_object_lock=(env.get("SOHOA_S3_OBJECT_LOCK") or "false").strip().lower() in _TRUE,
            database_url=env.get("SOHOA_DATABASE_URL") or f"sqlite:///{data_dir / 'catalog.sqlite3'}",
        )


def _without_credentials(url: str) -> str:
    """``scheme://user:pass@host/…`` → ``scheme://***@host/…``; query strings dropped (tokens live there)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    if parts.username or parts.password:
        host = f"***@{host}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def prefect_api(env: Mapping[str, str] | None = None) -> str:
    """The Prefect API the flows talk to (credentials removed), or that a temporary one is started."""
    env = os.environ if env is None else env
    url = env.get("PREFECT_API_URL")
    if not url:
        return "none set: a temporary local Prefect server is started per command (~20 s)"
    return _without_credentials(url)


def private_dir(path: Path) -> Path:
    """Create ``path`` readable by its owner only (0700): the data dir holds OCR text and ID numbers."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        if path.stat().st_mode & 0o077 and path.stat().st_uid == os.getuid():
            path.chmod(0o700)
    except OSError:
        pass
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` (if missing) as 0600, or narrow an existing one of ours to 0600.

    An existing file is never opened: closing any descriptor of a file drops every POSIX lock this
    process holds on it, and this runs on the SQLite catalog while the process may already have it
    open (a second ``open_catalog`` in the web app): its locks would silently go, and another
    process's commits could be lost.
    """
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return path
    except FileExistsError:
        pass
    try:
        st = path.stat()
        if st.st_uid == os.getuid() and st.st_mode & 0o077:
            path.chmod(0o600)
    except OSError:
        pass
    return path


def open_store(settings: Settings) -> ObjectStore:
    """The S3 store when SOHOA_S3_ENDPOINT is set, else the folder <data_dir>/objects."""
    if settings.s3_endpoint:
        from storage.s3 import S3Store

        if not (settings.s3_access_key and settings.s3_secret_key):
            raise ValueError("SOHOA_S3_ACCESS_KEY and SOHOA_S3_SECRET_KEY are required with SOHOA_S3_ENDPOINT")
        return S3Store(endpoint=settings.s3_endpoint, access_key=settings.s3_access_key,
                       secret_key=settings.s3_secret_key, bucket=settings.s3_bucket, secure=settings.s3_secure,
                       object_lock=settings.s3_object_lock)
    from storage.local import LocalStore

    private_dir(settings.data_dir)
    return LocalStore(settings.data_dir / "objects")


# Alembic keeps module-global state and is not thread-safe, and every task opens the catalog:
# migrate each database once per process, under a lock, and never again.
_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


def open_catalog(settings: Settings, *, migrate: bool = True) -> Catalog:
    """The catalog at SOHOA_DATABASE_URL, migrated to the latest schema (once per process) unless ``migrate=False``."""
    if settings.database_url.startswith("sqlite:///"):
        db = Path(settings.database_url[len("sqlite:///"):])
        if db.parent == settings.data_dir:
            private_dir(db.parent)
        else:
            db.parent.mkdir(parents=True, exist_ok=True)
        # OCR text and citizens' ID numbers: owner only (SQLite gives -wal/-shm the same mode).
        private_file(db)
    from storage.catalog import Catalog

    catalog = Catalog(settings.database_url)
    if migrate and settings.database_url not in _MIGRATED:
        with _MIGRATE_LOCK:
            if settings.database_url not in _MIGRATED:
                catalog.migrate()
                _MIGRATED.add(settings.database_url)
    return catalog
