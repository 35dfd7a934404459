"""Alembic migrations of the catalog schema (run with ``Catalog.migrate()``)."""
