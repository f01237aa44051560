"""exposure log and campaigns

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 19:54:40.881197
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.base

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "campaigns",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("placement", sa.String(length=64), nullable=True),
        sa.Column("boost", sa.Float(), nullable=False),
        sa.Column("pin_rank", sa.Integer(), nullable=True),
        sa.Column("starts_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("ends_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("boost >= 0", name=op.f("ck_campaigns_boost_non_negative")),
        sa.CheckConstraint(
            "pin_rank IS NULL OR pin_rank >= 1", name=op.f("ck_campaigns_pin_rank_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaigns")),
    )
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_campaigns_product_id"), ["product_id"], unique=False)

    op.create_table(
        "exposures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("recommendation_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("model_version", sa.String(length=96), nullable=True),
        sa.Column("served_from", sa.String(length=16), nullable=False),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("placement", sa.String(length=64), nullable=True),
        sa.Column("experiment", sa.String(length=64), nullable=True),
        sa.Column("variant", sa.String(length=64), nullable=True),
        sa.Column(
            "items",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("served_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exposures")),
        sa.UniqueConstraint("recommendation_id", name=op.f("uq_exposures_recommendation_id")),
    )
    with op.batch_alter_table("exposures", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exposures_customer_time", ["customer_id", "served_at"], unique=False
        )
        batch_op.create_index("ix_exposures_served_at", ["served_at"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("exposures", schema=None) as batch_op:
        batch_op.drop_index("ix_exposures_served_at")
        batch_op.drop_index("ix_exposures_customer_time")

    op.drop_table("exposures")
    with op.batch_alter_table("campaigns", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_campaigns_product_id"))

    op.drop_table("campaigns")
