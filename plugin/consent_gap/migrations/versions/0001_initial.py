"""The checkpoint schema as releases before migrations created it.

A database made by such a release has these tables and no version table: it is stamped at
this revision (not re-created) and upgraded from here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scan_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("fhir_base", sa.String(500), nullable=False, index=True),
        sa.Column("selection", sa.String(64), nullable=False),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("since", sa.String(40)),
        sa.Column("jurisdiction", sa.String(10)),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started", sa.String(40), nullable=False),
        sa.Column("finished", sa.String(40)),
        sa.Column("patients_total", sa.Integer, nullable=False),
        sa.Column("patients_done", sa.Integer, nullable=False),
        sa.Column("disclosures", sa.Integer, nullable=False),
        sa.Column("decisions", sa.Text, nullable=False),
        sa.Column("written", sa.Text, nullable=False),
        sa.Column("error_count", sa.Integer, nullable=False),
        sa.Column("errors", sa.Text, nullable=False),
        sa.Column("host", sa.String(200)),
        sa.Column("pid", sa.Integer),
    )
    op.create_table(
        "scan_progress",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("patient", sa.String(200), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("scan_progress")
    op.drop_table("scan_runs")
