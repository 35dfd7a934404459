"""Alembic environment for the catalog: runs on the connection ``Catalog.migrate()`` hands over."""
from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

config = context.config
# One migration at a time per PostgreSQL database: 12 processes opening a fresh catalog at once ran
# Alembic together and two failed creating the same type (pg_type_typname_nsp_index). The lock is
# a transaction's, so it is released at the migration's commit (or when its connection dies); the
# ones that waited then find the schema at head and do nothing.
MIGRATION_LOCK = 0x50686F61  # any constant of ours; "Shoa"


def _one_at_a_time(connection) -> None:  # type: ignore[no-untyped-def]
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def run() -> None:
    """Migrate online: on the caller's connection, or on ``sqlalchemy.url`` when run from the CLI."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            _one_at_a_time(connection)
            context.run_migrations()
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(connection=conn, render_as_batch=conn.dialect.name == "sqlite")
        with context.begin_transaction():
            _one_at_a_time(conn)
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: the schema differs per database")
run()
