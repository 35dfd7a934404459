"""Search filters on the page row: each page carries its case's ID, unit and received date and its document's kind.

Search walks the newest matching pages; with the filters on ``cases``/``documents`` every walked
page cost two index look-ups (bench/results-search.md: a unit filter took seconds at 10^6 pages).
``pages.case_id``, ``pages.agency``, ``pages.received_on`` (from the case ID, NULL for a
provisional one) and ``pages.kind`` are copies that ``Catalog.record_document`` writes with the
pages (every write path goes through it); existing rows are filled here.

PostgreSQL: btree indexes that walk the pages newest received first, whole or one unit or one kind
at a time: (received_on, id), (agency, received_on, id), (kind, received_on, id). SQLite: FTS5
drives the search; the columns are tested on the page row it found.

Revision ID: 0006_page_filters
Revises: 0005_scan_jobs
Create Date: 2026-11-30
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_page_filters"
down_revision = "0005_scan_jobs"
branch_labels = None
depends_on = None

WALK_INDEXES = {
    "ix_pages_received_walk": ["received_on", "id"],
    "ix_pages_agency_walk": ["agency", "received_on", "id"],
    "ix_pages_kind_walk": ["kind", "received_on", "id"],
}


def upgrade() -> None:
    """Add the four columns (plain ALTER TABLE on both databases), fill them, index them (PostgreSQL)."""
    op.add_column("pages", sa.Column("case_id", sa.String(64), nullable=True))
    op.add_column("pages", sa.Column("agency", sa.String(16), nullable=True))
    op.add_column("pages", sa.Column("received_on", sa.Date(), nullable=True))
    op.add_column("pages", sa.Column("kind", sa.String(64), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("""UPDATE pages p SET case_id = d.case_id, agency = c.agency, received_on = c.received_on,
                                         kind = d.kind
                      FROM documents d JOIN cases c ON c.case_id = d.case_id WHERE d.id = p.doc_pk""")
        for name, columns in WALK_INDEXES.items():
            op.create_index(name, "pages", columns)
    else:
        op.execute("""UPDATE pages SET
                          case_id = (SELECT d.case_id FROM documents d WHERE d.id = pages.doc_pk),
                          agency = (SELECT c.agency FROM documents d JOIN cases c ON c.case_id = d.case_id
                                    WHERE d.id = pages.doc_pk),
                          received_on = (SELECT c.received_on FROM documents d JOIN cases c ON c.case_id = d.case_id
                                         WHERE d.id = pages.doc_pk),
                          kind = (SELECT d.kind FROM documents d WHERE d.id = pages.doc_pk)""")


def downgrade() -> None:
    """Drop the indexes and the columns."""
    if op.get_bind().dialect.name == "postgresql":
        for name in WALK_INDEXES:
            op.drop_index(name, table_name="pages")
    for column in ("kind", "received_on", "agency", "case_id"):
        op.drop_column("pages", column)
