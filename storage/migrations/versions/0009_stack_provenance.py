"""Documents cut from a stack split by cover sheets record the stack's SHA-256 and their page range.

Revision ID: 0009
Revises: 0001
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0002_search_rank"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Three nullable columns (whole files leave them empty) and an index to find a stack's dossiers."""
    with op.batch_alter_table("documents") as batch:
        batch.add_column(sa.Column("stack_sha256", sa.String(64), nullable=True))
        batch.add_column(sa.Column("stack_first_page", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("stack_last_page", sa.Integer(), nullable=True))
    op.create_index("ix_documents_stack_sha256", "documents", ["stack_sha256"])


def downgrade() -> None:
    """Drop the stack columns."""
    op.drop_index("ix_documents_stack_sha256", table_name="documents")
    with op.batch_alter_table("documents") as batch:
        batch.drop_column("stack_last_page")
        batch.drop_column("stack_first_page")
        batch.drop_column("stack_sha256")
