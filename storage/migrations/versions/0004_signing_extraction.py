"""Signing and extraction: each document's result code (unique), signatures and extracted fields.

``documents.result_code`` (mã kết quả số hóa, unique), ``documents.signatures`` (JSON list, empty =
not signed) and ``document_fields`` (one row per extracted value: field name, value, page, box,
confidence), indexed by value so ``sohoa search --id 008189004512`` is an index lookup.

Revision ID: 0004_signing_extraction
Revises: 0009
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_signing_extraction"
down_revision = "0003_accounts_audit"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and the fields table.

    Plain ALTER TABLE ADD COLUMN on both databases: a batch (copy-and-rename) migration on SQLite
    would drop the old documents table, and with foreign keys on that deletes every page.
    """
    op.add_column("documents", sa.Column("result_code", sa.String(96), nullable=True))
    op.add_column("documents", sa.Column("signatures", sa.JSON(), nullable=True))
    op.create_index("ix_documents_result_code", "documents", ["result_code"], unique=True)
    op.create_table(
        "document_fields",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("doc_pk", sa.Integer(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.Column("page", sa.Integer(), nullable=False),
        sa.Column("box", sa.JSON(), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
    )
    op.create_index("ix_document_fields_value", "document_fields", ["value"])
    op.create_index("ix_document_fields_doc", "document_fields", ["doc_pk"])


def downgrade() -> None:
    """Drop what this revision added."""
    op.drop_table("document_fields")
    op.drop_index("ix_documents_result_code", table_name="documents")
    op.drop_column("documents", "signatures")
    op.drop_column("documents", "result_code")
