"""Schedule budgets: each schedule's item count and stored size, and runs refused with a reason.

Revision ID: 0012_schedule_budgets
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_schedule_budgets"
down_revision = "0003"
branch_labels = None
depends_on = None

_JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    # Stored once at creation, so the per-owner cap, lists and the tick's item budget never read
    # (or sum over) the requests themselves.
    op.add_column("schedules", sa.Column("item_count", sa.Integer, nullable=False, server_default="1"))
    op.add_column("schedules", sa.Column("stored_bytes", sa.Integer, nullable=False, server_default="0"))
    op.execute("UPDATE schedules SET item_count = jsonb_array_length(requests),"
               " stored_bytes = octet_length(requests::text)")
    op.create_index("schedules_owner", "schedules", ["owner_id", "created_at"])
    # A run the owner's budget refused records why instead of a batch.
    op.alter_column("schedule_runs", "batch_id", existing_type=sa.Text, nullable=True)
    op.add_column("schedule_runs", sa.Column("error", _JSONB, nullable=True))


def downgrade() -> None:
    op.execute("DELETE FROM schedule_runs WHERE batch_id IS NULL")
    op.drop_column("schedule_runs", "error")
    op.alter_column("schedule_runs", "batch_id", existing_type=sa.Text, nullable=False)
    op.drop_index("schedules_owner", "schedules")
    op.drop_column("schedules", "stored_bytes")
    op.drop_column("schedules", "item_count")
