"""Webhook deliveries (an outbox of signed POSTs) and the webhook URL of schedules.

Revision ID: 0014_webhooks
Revises: 0015_quotas
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_webhooks"
down_revision = "0015_quotas"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "webhook_deliveries",
        # The webhook-id receivers deduplicate on: one per job or batch, the same on every attempt.
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.Text, nullable=False),
        sa.Column("subject_id", sa.Text, nullable=False),
        sa.Column("subject_kind", sa.Text, nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        # waiting: the job or batch has not finished; pending: due at next_attempt_at (also the lease
        # of an attempt in flight); delivered and failed are final.
        sa.Column("state", sa.Text, nullable=False, server_default="waiting"),
        sa.Column("event_type", sa.Text, nullable=True),
        sa.Column("event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("state IN ('waiting','pending','delivered','failed')", name="webhook_deliveries_state"),
        sa.CheckConstraint("subject_kind IN ('generation','batch')", name="webhook_deliveries_subject_kind"),
        sa.CheckConstraint("state = 'waiting' OR event_type IS NOT NULL", name="webhook_deliveries_event"),
    )
    # One delivery per job or batch: a second finisher can never record a second event.
    op.create_index("webhook_deliveries_subject", "webhook_deliveries", ["subject_id"], unique=True)
    op.create_index("webhook_deliveries_due", "webhook_deliveries", ["next_attempt_at"],
                    postgresql_where=sa.text("state = 'pending'"))
    # "Has this batch an unfinished item?" on every item that finishes: one index probe, not a scan.
    op.create_index("jobs_batch_active", "jobs", ["batch_id"],
                    postgresql_where=sa.text("status IN ('queued','running') AND batch_id IS NOT NULL"))
    op.add_column("schedules", sa.Column("webhook_url", sa.Text, nullable=True))


def downgrade() -> None:
    op.drop_column("schedules", "webhook_url")
    op.drop_index("jobs_batch_active", table_name="jobs")
    op.drop_table("webhook_deliveries")
