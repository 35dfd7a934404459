"""An API token may act for a named operator account: its uploads are signed with that operator's key.

Revision ID: 0012_ecopy_token_operator
Revises: 0011_esystem_webhooks_reuse
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_ecopy_token_operator"
down_revision = "0011_esystem_webhooks_reuse"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """A nullable column: tokens made before act for nobody, as before."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("operator", sa.String(128), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("operator")
