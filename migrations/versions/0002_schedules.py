"""Schedules, their runs (one per due time, enforced by a unique key), and tick deduplication.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")
_JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.Text, nullable=False, server_default=""),
        sa.Column("requests", _JSONB, nullable=False),
        sa.Column("is_batch", sa.Boolean, nullable=False),
        sa.Column("cron", sa.Text, nullable=True),
        sa.Column("timezone", sa.Text, nullable=True),
        sa.Column("run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.CheckConstraint("(cron IS NULL) <> (run_at IS NULL)", name="schedules_cron_xor_run_at"),
    )
    op.create_index("schedules_due", "schedules", ["next_run_at"],
                    postgresql_where=sa.text("next_run_at IS NOT NULL AND NOT paused"))
    op.create_table(
        "schedule_runs",
        sa.Column("schedule_id", sa.Text, sa.ForeignKey("schedules.id", ondelete="CASCADE"), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("batch_id", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("schedule_id", "due_at"),
    )
    op.create_table(
        "ticks",
        sa.Column("job_name", sa.Text, nullable=False),
        sa.Column("schedule_time", sa.Text, nullable=False),
        sa.Column("fired", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.PrimaryKeyConstraint("job_name", "schedule_time"),
    )


def downgrade() -> None:
    op.drop_table("ticks")
    op.drop_table("schedule_runs")
    op.drop_table("schedules")
