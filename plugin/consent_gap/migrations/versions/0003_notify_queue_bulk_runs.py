"""Two tables for issue 11: ``notify_queue``, the durable queue of FHIR Subscription
notifications the scheduler drains (scan/notifications.py), and ``bulk_runs``, the export
``transactionTime`` of each successful bulk scan, the next bulk run's ``_since``
(scan/bulk.py).

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notify_queue",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("resource_type", sa.String(64), nullable=False),
        sa.Column("resource_id", sa.String(64), nullable=False),
        sa.Column("received", sa.String(40), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.UniqueConstraint("resource_type", "resource_id", name="uq_notify_queue_resource"),
    )
    op.create_table(
        "bulk_runs",
        sa.Column("run_id", sa.Integer, primary_key=True),
        sa.Column("fhir_base", sa.String(500), nullable=False, index=True),
        sa.Column("grp", sa.String(200), nullable=False),
        sa.Column("transaction_time", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("bulk_runs")
    op.drop_table("notify_queue")
