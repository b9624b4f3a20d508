"""Uploads: pictures callers PUT to a signed URL, checked before any model reads them.

Revision ID: 0016_uploads
Revises: 0012_schedule_budgets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0016_uploads"
down_revision = "0012_schedule_budgets"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("owner_id", sa.Text, nullable=False),
        # What the caller declared; the PUT must match both (the signed URL binds them in the cloud).
        sa.Column("declared_mime_type", sa.Text, nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("uri", sa.Text, nullable=False),
        # pending (no bytes checked yet) -> ready (a PNG, JPEG or WebP we read) | rejected (error says why)
        sa.Column("status", sa.Text, nullable=False, server_default="pending"),
        sa.Column("mime_type", sa.Text, nullable=True),
        sa.Column("width", sa.Integer, nullable=True),
        sa.Column("height", sa.Integer, nullable=True),
        sa.Column("error", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        # The upload URL's expiry; the object itself is deleted by the bucket's lifecycle rule.
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('pending', 'ready', 'rejected')", name="uploads_status"),
        sa.CheckConstraint("size_bytes > 0", name="uploads_size_positive"),
    )


def downgrade() -> None:
    op.drop_table("uploads")
