"""API keys (keyed hashes only) and per-key fixed-window rate-limit counters.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_NOW = sa.text("now()")
_JSONB = postgresql.JSONB(astext_type=sa.Text())


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("scopes", _JSONB, nullable=False),
        # HMAC-SHA256(pepper, secret) in hex; the secret itself is never stored.
        sa.Column("secret_hash", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=_NOW),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id ~ '^[0-9a-f]{12}$'", name="api_keys_id_format"),
        sa.CheckConstraint("secret_hash ~ '^[0-9a-f]{64}$'", name="api_keys_secret_hash_format"),
        sa.CheckConstraint(
            "jsonb_typeof(scopes) = 'array' AND jsonb_array_length(scopes) > 0"
            " AND scopes <@ '[\"generate\", \"batch\", \"schedule\", \"admin\"]'::jsonb",
            name="api_keys_scopes",
        ),
    )
    op.create_table(
        "rate_limits",
        sa.Column("key_id", sa.Text, nullable=False),
        sa.Column("family", sa.Text, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key_id", "family", "window_start"),
        # Counters are worth less than the WAL they would write on every request; losing them in a
        # crash only resets the current windows.
        prefixes=["UNLOGGED"],
        # Room on each page so the per-request increment stays a HOT update (no index write).
        postgresql_with={"fillfactor": "70"},
    )


def downgrade() -> None:
    op.drop_table("rate_limits")
    op.drop_table("api_keys")
