"""What every flow and command shares: settings from the environment and the archive they open."""
from __future__ import annotations

from storage.archive import Archive
from storage.config import Settings, open_catalog, open_store


def settings() -> Settings:
    """Settings from the environment (SOHOA_DATA_DIR, SOHOA_S3_*, SOHOA_DATABASE_URL)."""
    return Settings.from_env()


def open_archive(config: Settings | None = None) -> Archive:
    """The object store and catalog the settings point at, opened fresh (never passed into tasks)."""
    config = config or settings()
    return Archive(open_store(config), open_catalog(config))
