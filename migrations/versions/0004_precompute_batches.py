"""precompute batches: runs, their committed chunks and the ranked rows

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 20:44:21.073835
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "precompute_batches",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=96), nullable=False),
        sa.Column("k", sa.Integer(), nullable=False),
        sa.Column("chunk_size", sa.Integer(), nullable=False),
        sa.Column("shard_count", sa.Integer(), nullable=False),
        sa.Column("as_of", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("customers_total", sa.Integer(), nullable=False),
        sa.Column("chunks_total", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("is_current", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("completed_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status IN ('running','complete')", name=op.f("ck_precompute_batches_status")
        ),
        sa.PrimaryKeyConstraint("batch_id", name=op.f("pk_precompute_batches")),
    )
    with op.batch_alter_table("precompute_batches", schema=None) as batch_op:
        batch_op.create_index(
            "ix_precompute_batches_strategy_current", ["strategy", "is_current"], unique=False
        )

    op.create_table(
        "precomputed_recommendations",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason_codes", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint(
            "batch_id", "customer_id", "rank", name=op.f("pk_precomputed_recommendations")
        ),
    )
    op.create_table(
        "precompute_batch_chunks",
        sa.Column("batch_id", sa.String(length=64), nullable=False),
        sa.Column("chunk_index", sa.Integer(), nullable=False),
        sa.Column("shard_index", sa.Integer(), nullable=False),
        sa.Column("customers", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column(
            "outcomes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("done_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["precompute_batches.batch_id"],
            name=op.f("fk_precompute_batch_chunks_batch_id_precompute_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "chunk_index", name=op.f("pk_precompute_batch_chunks")),
    )


def downgrade() -> None:
    op.drop_table("precompute_batch_chunks")
    op.drop_table("precomputed_recommendations")
    with op.batch_alter_table("precompute_batches", schema=None) as batch_op:
        batch_op.drop_index("ix_precompute_batches_strategy_current")

    op.drop_table("precompute_batches")
