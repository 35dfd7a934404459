"""The e-system's tables: webhook subscriptions, the event outbox and its deliveries, and reused e-copies.

``outbox_events`` is written where a job or a document changes state; ``webhook_deliveries`` holds one
row per (subscription, event) that the delivery worker sends at least once, in order per case.
``document_links`` attaches a stored e-copy of one case to another case by its result code, without
copying an object (issue 20).

Revision ID: 0011_esystem_webhooks_reuse
Revises: 0010_archival_records
Create Date: 2026-12-07
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_esystem_webhooks_reuse"
down_revision = "0010_archival_records"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create webhooks, outbox_events, webhook_deliveries and document_links."""
    op.create_table(
        "webhooks",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("unit", sa.String(16), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False, unique=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("unit", sa.String(16), nullable=True),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
    )
    op.create_index("ix_outbox_events_unit", "outbox_events", ["unit", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("webhook_id", sa.String(40), sa.ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
        sa.Column("event_pk", sa.Integer(), sa.ForeignKey("outbox_events.id", ondelete="CASCADE"), nullable=False),
        sa.Column("order_key", sa.String(80), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("last_status", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delivered_at", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
        sa.UniqueConstraint("webhook_id", "event_pk", name="uq_webhook_deliveries_event"),
    )
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["status", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_order", "webhook_deliveries", ["webhook_id", "order_key", "event_pk"])
    op.create_table(
        "document_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.String(64), nullable=False),
        sa.Column("source_case_id", sa.String(64), nullable=False),
        sa.Column("document_id", sa.String(128), nullable=False),
        sa.Column("result_code", sa.String(96), nullable=False),
        sa.Column("linked_by", sa.String(160), nullable=False),
        sa.Column("linked_at", sa.Float(), nullable=False),
        sa.UniqueConstraint("case_id", "source_case_id", "document_id", name="uq_document_links"),
    )
    op.create_index("ix_document_links_case", "document_links", ["case_id"])


def downgrade() -> None:
    """Drop the e-system's tables."""
    op.drop_table("document_links")
    op.drop_table("webhook_deliveries")
    op.drop_table("outbox_events")
    op.drop_table("webhooks")
