"""Scan jobs of the desk service: the job, its pages' verdicts, and the running service instances.

Times are seconds since the epoch (floats) so that leases and due times compare the same way on
SQLite and PostgreSQL. Pages live in their own table so that a page's verdict (or its replacement)
is one row update, whoever writes it.

Revision ID: 0005_scan_jobs
Revises: 0009
Create Date: 2026-11-29
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_scan_jobs"
down_revision = "0004_signing_extraction"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create scan_jobs, scan_job_pages and scan_services."""
    op.create_table(
        "scan_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("case_id", sa.String(64), nullable=True),
        sa.Column("agency", sa.String(16), nullable=True),
        sa.Column("operator", sa.String(128), nullable=True),
        sa.Column("kind", sa.String(64), nullable=True),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("documents", sa.JSON(), nullable=False),
        sa.Column("stack", sa.JSON(), nullable=True),
        sa.Column("hold", sa.JSON(), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", sa.Float(), nullable=True),
    )
    op.create_index("ix_scan_jobs_status", "scan_jobs", ["status"])
    op.create_index("ix_scan_jobs_operator_created", "scan_jobs", ["operator", "created_at"])
    op.create_index("ix_scan_jobs_case", "scan_jobs", ["case_id"])
    op.create_table(
        "scan_job_pages",
        sa.Column("job_id", sa.String(32), sa.ForeignKey("scan_jobs.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("number", sa.Integer(), primary_key=True),
        sa.Column("file", sa.Text(), nullable=False),
        sa.Column("file_page", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("verdict", sa.JSON(), nullable=True),
        sa.Column("qr", sa.Text(), nullable=True),
        sa.Column("thumbnail", sa.Text(), nullable=True),
    )
    op.create_table(
        "scan_services",
        sa.Column("instance", sa.String(128), primary_key=True),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.Float(), nullable=False),
        sa.Column("heartbeat_at", sa.Float(), nullable=False),
        sa.Column("ready", sa.Boolean(), nullable=False),
    )


def downgrade() -> None:
    """Drop the scan job tables."""
    op.drop_table("scan_services")
    op.drop_table("scan_job_pages")
    op.drop_table("scan_jobs")
