"""An index for the two questions every scan starts with: the last good run of this server
(``last_success``) and the run of this selection to resume (``resumable``). Without it both
read every run the server ever had, one more each night.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_scan_runs_base_selection_status", "scan_runs",
                    ["fhir_base", "selection", "status"])


def downgrade() -> None:
    op.drop_index("ix_scan_runs_base_selection_status", table_name="scan_runs")
