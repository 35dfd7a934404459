"""Archival records (issue 22): record metadata of cases and documents, disposal proposals, tombstones.

Revision ID: 0010_archival_records
Revises: 0006_page_filters
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_archival_records"
down_revision = "0006_page_filters"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Four tables; the record fields live in JSON, the dates disposal searches on in columns."""
    op.create_table(
        "case_records",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("retention", sa.String(16)),
        sa.Column("closed_on", sa.Date()),
        sa.Column("due_on", sa.Date()),
        sa.Column("legal_hold", sa.Text()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_records_due_on", "case_records", ["due_on"])
    op.create_table(
        "document_records",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("document_id", sa.String(128), primary_key=True),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_table(
        "disposal_proposals",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposer", sa.String(160), nullable=False),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text()),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("approver", sa.String(160)),
        sa.Column("decision_number", sa.String(64)),
        sa.Column("decision_date", sa.Date()),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "disposal_tombstones",
        sa.Column("case_id", sa.String(64), primary_key=True),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("proposer", sa.String(160), nullable=False),
        sa.Column("approver", sa.String(160), nullable=False),
        sa.Column("decision_number", sa.String(64), nullable=False),
        sa.Column("decision_date", sa.Date(), nullable=False),
        sa.Column("record", sa.JSON(), nullable=False),
        sa.Column("destroyed", sa.JSON(), nullable=False),
    )


def downgrade() -> None:
    """Drop the four tables."""
    op.drop_table("disposal_tombstones")
    op.drop_table("disposal_proposals")
    op.drop_table("document_records")
    op.drop_index("ix_case_records_due_on", table_name="case_records")
    op.drop_table("case_records")
