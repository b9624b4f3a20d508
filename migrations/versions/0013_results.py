"""Results: custom ids, the schedule of a job, cancelled jobs, results files, and list indexes.

Revision ID: 0013_results
Revises: 0014_webhooks
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_results"
down_revision = "0014_webhooks"
branch_labels = None
depends_on = None

_STATUSES = "'queued','running','succeeded','failed','cancelled'"


def upgrade() -> None:
    op.add_column("jobs", sa.Column("custom_id", sa.Text, nullable=True))
    op.add_column("jobs", sa.Column("schedule_id", sa.Text, nullable=True))
    op.drop_constraint("jobs_status", "jobs", type_="check")
    op.create_check_constraint("jobs_status", "jobs", f"status IN ({_STATUSES})")
    # The results file: who is writing it (a lease, so a writer that died is replaced) and once written, where.
    op.add_column("batches", sa.Column("results_uri", sa.Text, nullable=True))
    op.add_column("batches", sa.Column("results_written_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("results_lease_until", sa.DateTime(timezone=True), nullable=True))
    # custom_id is unique within a batch (the API checks first and names the item; this is the last word).
    op.create_index("jobs_batch_custom_id", "jobs", ["batch_id", "custom_id"], unique=True,
                    postgresql_where=sa.text("custom_id IS NOT NULL"))
    # Lists: newest first by (created_at, id), keyset-paged, one index per filter the API offers.
    order = [sa.text("created_at DESC"), sa.text("id DESC")]
    op.create_index("jobs_owner_recent", "jobs", ["owner_id", *order])
    op.create_index("jobs_owner_status_recent", "jobs", ["owner_id", "status", *order])
    op.create_index("jobs_batch_recent", "jobs", ["batch_id", *order],
                    postgresql_where=sa.text("batch_id IS NOT NULL"))
    op.create_index("jobs_schedule_recent", "jobs", ["schedule_id", *order],
                    postgresql_where=sa.text("schedule_id IS NOT NULL"))
    op.create_index("batches_owner_recent", "batches", ["owner_id", *order])
    # The tick's sweep for finished batches whose results file is not written yet.
    op.create_index("batches_results_pending", "batches", ["created_at"],
                    postgresql_where=sa.text("results_written_at IS NULL"))


def downgrade() -> None:
    for name, table in (("batches_results_pending", "batches"), ("batches_owner_recent", "batches"),
                        ("jobs_schedule_recent", "jobs"), ("jobs_batch_recent", "jobs"),
                        ("jobs_owner_status_recent", "jobs"), ("jobs_owner_recent", "jobs"),
                        ("jobs_batch_custom_id", "jobs")):
        op.drop_index(name, table_name=table)
    for column in ("results_lease_until", "results_written_at", "results_uri"):
        op.drop_column("batches", column)
    op.execute("UPDATE jobs SET status = 'failed' WHERE status = 'cancelled'")
    op.drop_constraint("jobs_status", "jobs", type_="check")
    op.create_check_constraint("jobs_status", "jobs", "status IN ('queued','running','succeeded','failed')")
    op.drop_column("jobs", "schedule_id")
    op.drop_column("jobs", "custom_id")
