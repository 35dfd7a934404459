"""Throttle counters shared by every worker and replica (issue 21: sign-in race, unauthenticated refusals).

One row per key (``sign_in:name:…``, ``sign_in:client:…``, ``refused:client:…``): the hits of the
current fixed window, counted by one UPDATE … RETURNING (storage/throttle.py), and the hits of the
window before it, so that repeated refusals are written to the audit trail as one row with a count.

Revision ID: 0013_security_throttle
Revises: 0012_ecopy_token_operator
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_security_throttle"
down_revision = "0012_ecopy_token_operator"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """The counters table (small: one row per name or address seen in the last windows)."""
    op.create_table(
        "throttle_counters",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("previous", sa.Integer(), nullable=False),
        sa.Column("previous_start", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    """Drop the counters."""
    op.drop_table("throttle_counters")
