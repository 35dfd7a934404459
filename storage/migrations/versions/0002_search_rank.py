"""Search that ranks and lists: the searchable-PDF page and its source page, indexes for filters.

- ``pages.number`` is the page of the stored searchable PDF; ``pages.source_page`` (new) the page of
  the scanned file or stack it came from (they differ when blank pages were dropped or a stack was
  split). Rows written before this revision keep ``source_page`` NULL; ``sohoa reindex`` fills it
  and renumbers ``number`` from each ocr.json.
- Indexes for the filters of search and of the case list: received date, agency (unit), kind, and
  on PostgreSQL a ``text_pattern_ops`` index so that a case-ID prefix uses an index.
- SQLite: an ``fts5vocab`` table over ``pages_fts``, which gives each word's page count (the
  document frequency BM25 needs).

Revision ID: 0002_search_rank
Revises: 0001
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_search_rank"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add pages.source_page, the filter indexes and (SQLite) the FTS vocabulary table."""
    op.add_column("pages", sa.Column("source_page", sa.Integer(), nullable=True))
    op.create_index("ix_cases_received", "cases", ["received_on", "case_id"])
    op.create_index("ix_cases_agency_received", "cases", ["agency", "received_on"])
    op.create_index("ix_documents_kind", "documents", ["kind"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE INDEX ix_cases_case_id_pattern ON cases (case_id text_pattern_ops)")
        op.execute("CREATE INDEX ix_documents_case_id_pattern ON documents (case_id text_pattern_ops)")
    else:
        op.execute("CREATE VIRTUAL TABLE pages_fts_vocab USING fts5vocab(pages_fts, 'col')")


def downgrade() -> None:
    """Drop what this revision added."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_documents_case_id_pattern")
        op.execute("DROP INDEX IF EXISTS ix_cases_case_id_pattern")
    else:
        op.execute("DROP TABLE IF EXISTS pages_fts_vocab")
    op.drop_index("ix_documents_kind", "documents")
    op.drop_index("ix_cases_agency_received", "cases")
    op.drop_index("ix_cases_received", "cases")
    op.drop_column("pages", "source_page")
