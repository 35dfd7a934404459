"""Initial catalog: cases, documents, pages, and full-text search per database.

SQLite: an FTS5 table over a diacritic-folded copy of each page (folded in Python: NFD, strip marks,
đ→d, lower) plus the exact text, filled by ``storage.catalog``.
PostgreSQL: the ``unaccent`` extension, a ``sohoa_folded`` text search configuration (unaccent then
simple; unaccent maps đ→d), two generated tsvector columns (folded, exact) with GIN indexes.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables and the search machinery of the current database."""
    op.create_table(
        "cases",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("agency", sa.String(16), nullable=True),
        sa.Column("received_on", sa.Date(), nullable=True),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "documents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), sa.ForeignKey("cases.case_id", ondelete="CASCADE"), nullable=False),
        sa.Column("document_id", sa.String(128), nullable=False),
        sa.Column("source_sha256", sa.String(64), nullable=False),
        sa.Column("source_name", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(64), nullable=True),
        sa.Column("operator", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("page_count", sa.Integer(), nullable=False),
        sa.Column("keys", sa.JSON(), nullable=False),
        sa.Column("mean_confidence", sa.Float(), nullable=True),
        sa.UniqueConstraint("case_id", "document_id", name="uq_documents_case_document"),
    )
    op.create_index("ix_documents_document_id", "documents", ["document_id"])
    op.create_index("ix_documents_case_sha256", "documents", ["case_id", "source_sha256"])
    op.create_index("ix_documents_created_at", "documents", ["created_at"])
    op.create_table(
        "pages",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("doc_pk", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.UniqueConstraint("doc_pk", "number", name="uq_pages_doc_number"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS unaccent")
        op.execute("CREATE TEXT SEARCH CONFIGURATION sohoa_folded (COPY = simple)")
        op.execute("ALTER TEXT SEARCH CONFIGURATION sohoa_folded "
                   "ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple")
        op.execute("ALTER TABLE pages ADD COLUMN tsv_folded tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('sohoa_folded'::regconfig, text)) STORED")
        op.execute("ALTER TABLE pages ADD COLUMN tsv_exact tsvector "
                   "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, text)) STORED")
        op.execute("CREATE INDEX ix_pages_tsv_folded ON pages USING gin (tsv_folded)")
        op.execute("CREATE INDEX ix_pages_tsv_exact ON pages USING gin (tsv_exact)")
    else:
        op.execute("CREATE VIRTUAL TABLE pages_fts USING fts5("
                   "folded, exact, tokenize = 'unicode61 remove_diacritics 0')")


def downgrade() -> None:
    """Drop everything this revision created."""
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("pages")
        op.execute("DROP TEXT SEARCH CONFIGURATION IF EXISTS sohoa_folded")
    else:
        op.execute("DROP TABLE IF EXISTS pages_fts")
        op.drop_table("pages")
    op.drop_table("documents")
    op.drop_table("cases")
