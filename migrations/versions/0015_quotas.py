"""Vertex AI quota pacing: each model's budget, owners' turns, and when each batch item was admitted.

Revision ID: 0015_quotas
Revises: 0016_uploads
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015_quotas"
down_revision = "0016_uploads"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")


def upgrade() -> None:
    # Times are seconds since the epoch on the database clock: the pacing arithmetic is in Python.
    op.create_table(
        "quota_budgets",
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("version", sa.BigInteger, nullable=False),
        sa.Column("tat", sa.Float, nullable=False),
        sa.Column("window_start", sa.Float, nullable=False),
        sa.Column("window_seconds", sa.Float, nullable=False),
        sa.Column("limit_calls", sa.Float, nullable=True),
        sa.Column("admitted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("admitted_sync", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deferred", sa.Integer, nullable=False, server_default="0"),
        sa.Column("refused_sync", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cut_window", sa.Float, nullable=False, server_default="-1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
    )
    op.create_table(
        "quota_owners",
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.Text, primary_key=True),
        sa.Column("last_admitted", sa.Float, nullable=False),
    )
    op.add_column("jobs", sa.Column("admitted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("batches", sa.Column("trace_attributes", postgresql.JSONB(astext_type=sa.Text()),
                                       nullable=False, server_default=sa.text("'{}'::jsonb")))
    # Items published before pacing existed were admitted when they were published.
    op.execute("UPDATE jobs SET admitted_at = created_at WHERE batch_id IS NOT NULL AND status = 'queued'")
    op.create_index("ix_jobs_quota_queue", "jobs", ["model", "owner_id", "created_at"],
                    postgresql_where=sa.text("status = 'queued' AND admitted_at IS NULL AND batch_id IS NOT NULL"))


def downgrade() -> None:
    op.drop_index("ix_jobs_quota_queue", table_name="jobs")
    op.drop_column("batches", "trace_attributes")
    op.drop_column("jobs", "admitted_at")
    op.drop_table("quota_owners")
    op.drop_table("quota_budgets")
