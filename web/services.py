"""What every request uses (store, catalog, accounts, audit trail), opened once per process."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from storage.accounts import Accounts
from storage.audit import AuditTrail
from storage.catalog import Catalog
from storage.config import Settings, open_catalog, open_store
from storage.objectstore import ObjectStore
from storage.throttle import Throttle
from web.config import WebSettings


@dataclass
class Services:
    """What every request uses, opened once per process."""

    settings: Settings
    web: WebSettings
    store: ObjectStore
    catalog: Catalog
    accounts: Accounts
    audit: AuditTrail
    cache_dir: Path

    @functools.cached_property
    def throttle(self) -> Throttle:
        """Counters shared by every worker and replica (sign-in attempts, unauthenticated refusals)."""
        return Throttle(self.catalog.engine)


def open_services(settings: Settings | None = None, web: WebSettings | None = None) -> Services:
    """Open the store, catalog (migrated), accounts and audit trail the settings point at."""
    settings = settings or Settings.from_env()
    web = web or WebSettings.from_env()
    catalog = open_catalog(settings)
    cache = web.cache_dir or settings.data_dir / "web-cache"
    cache.mkdir(parents=True, exist_ok=True)
    return Services(settings=settings, web=web, store=open_store(settings), catalog=catalog,
                    accounts=Accounts(catalog.engine, idle=web.idle), audit=AuditTrail(catalog.engine),
                    cache_dir=cache)
