"""The catalog's tables and database engine: SQLAlchemy tables, migrations folder, connection settings."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from models import StorageError

MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS = 10_000  # how long a SQLite writer waits for the lock before "database is locked"
# Tables of migrations 0003 (storage.accounts, storage.audit), 0010 (records), 0011 (webhooks) and 0013
# (throttle), dropped with the catalog by drop_all.
ACCOUNT_TABLES = ("web_sessions, api_tokens, users, audit_exports, audit_head, audit_log, throttle_counters, "
                  "case_records, document_records, disposal_proposals, disposal_tombstones, "
                  "webhook_deliveries, outbox_events, webhooks, document_links")

metadata = sa.MetaData()
cases = sa.Table(
    "cases", metadata,
    sa.Column("case_id", sa.String(64), primary_key=True),
    sa.Column("agency", sa.String(16)),
    sa.Column("received_on", sa.Date()),
    sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
)
documents = sa.Table(
    "documents", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id", ondelete="CASCADE"), nullable=False),
    sa.Column("document_id", sa.String(128), nullable=False),
    sa.Column("source_sha256", sa.String(64), nullable=False),
    sa.Column("source_name", sa.Text(), nullable=False),
    sa.Column("kind", sa.String(64)),
    sa.Column("operator", sa.String(128)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("page_count", sa.Integer(), nullable=False),
    sa.Column("keys", sa.JSON(), nullable=False),
    sa.Column("mean_confidence", sa.Float()),
    sa.Column("stack_sha256", sa.String(64)),
    sa.Column("stack_first_page", sa.Integer()),
    sa.Column("stack_last_page", sa.Integer()),
    sa.Column("result_code", sa.String(96)),
    sa.Column("signatures", sa.JSON()),
    sa.UniqueConstraint("case_id", "document_id", name="uq_documents_case_document"),
)
document_fields = sa.Table(
    "document_fields", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("doc_pk", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("value", sa.String(256), nullable=False),
    sa.Column("page", sa.Integer(), nullable=False),
    sa.Column("box", sa.JSON()),
    sa.Column("confidence", sa.Float(), nullable=False),
)
pages = sa.Table(
    "pages", metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("doc_pk", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    sa.Column("number", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("confidence", sa.Float()),
    sa.Column("source_page", sa.Integer()),
    # Copies of the case's and the document's filter values (migration 0006): search tests them on
    # the page row it walks, with no look-up in documents or cases.
    sa.Column("case_id", sa.String(64)),
    sa.Column("agency", sa.String(16)),
    sa.Column("received_on", sa.Date()),
    sa.Column("kind", sa.String(64)),
)


def catalog_url(url: str) -> str:
    """The SQLAlchemy URL of a catalog URL (``postgresql://`` is taken to mean psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


def catalog_engine(url: str, *, echo: bool = False) -> sa.Engine:
    """An engine on a SQLite or PostgreSQL catalog (``catalog_url`` form), with the settings each needs."""
    connect_args: dict[str, Any] = {"connect_timeout": 5} if url.startswith("postgresql") else {}
    engine = sa.create_engine(url, echo=echo, connect_args=connect_args, pool_pre_ping=True)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    elif engine.dialect.name == "postgresql":
        sa.event.listen(engine, "connect", _postgres_settings)
    else:
        raise StorageError(f"Unsupported catalog database {engine.dialect.name}: use SQLite or PostgreSQL.")
    return engine


def _postgres_settings(dbapi_conn: Any, _record: Any) -> None:
    # Plan every search with its own values: whether a word is on 1 % or 60 % of the pages decides
    # between the GIN index and a backward primary-key scan (a generic plan cannot know).
    with dbapi_conn.cursor() as cur:
        cur.execute("SET plan_cache_mode = force_custom_plan")
        # Catalog queries are short; JIT compiling them (triggered by the cost of a forced plan)
        # costs more than it saves.
        cur.execute("SET jit = off")
    dbapi_conn.commit()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA foreign_keys = ON")
    cur.execute("PRAGMA journal_mode = WAL")
    cur.execute(f"PRAGMA busy_timeout = {int(SQLITE_BUSY_MS)}")
    cur.close()
