"""bank data model and model registry

Revision ID: 0001
Revises:
Create Date: 2026-11-25 19:49:58.278876
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import app.db.base

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "customers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("customer_id", sa.String(length=64), nullable=False),
        sa.Column("segment", sa.String(length=64), nullable=True),
        sa.Column("age", sa.Integer(), nullable=True),
        sa.Column("income_band", sa.String(length=32), nullable=True),
        sa.Column("risk_class", sa.String(length=2), nullable=True),
        sa.Column("risk_assessed_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("consent_personalization", sa.Boolean(), nullable=False),
        sa.Column(
            "features",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "risk_class IS NULL OR risk_class IN ('C1','C2','C3','C4','C5')",
            name=op.f("ck_customers_risk_class"),
        ),
        sa.CheckConstraint(
            "age IS NULL OR (age >= 0 AND age <= 130)", name=op.f("ck_customers_age_range")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customers")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_customers_customer_id")),
    )
    op.create_table(
        "import_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("started_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("rows_read", sa.Integer(), nullable=False),
        sa.Column("rows_written", sa.Integer(), nullable=False),
        sa.Column("rows_unchanged", sa.Integer(), nullable=False),
        sa.Column("rows_rejected", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_runs")),
    )
    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(length=96), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column(
            "params",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("trained_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("data_window_start", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("data_window_end", app.db.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("data_fingerprint", sa.String(length=64), nullable=True),
        sa.Column(
            "metrics",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("artifact_path", sa.Text(), nullable=False),
        sa.Column("artifact_sha256", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "status IN ('registered','active','retired','failed')",
            name=op.f("ck_model_versions_status"),
        ),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_model_versions")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_model_versions_algorithm"), ["algorithm"], unique=False
        )

    op.create_table(
        "products",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("product_id", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("risk_level", sa.String(length=2), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("launch_date", sa.Date(), nullable=True),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "features",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "risk_level IN ('R1','R2','R3','R4','R5')", name=op.f("ck_products_risk_level")
        ),
        sa.CheckConstraint(
            "status IN ('draft','active','suspended','retired')", name=op.f("ck_products_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_products")),
        sa.UniqueConstraint("product_id", name=op.f("uq_products_product_id")),
    )
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_products_category"), ["category"], unique=False)
        batch_op.create_index(batch_op.f("ix_products_status"), ["status"], unique=False)

    op.create_table(
        "holdings",
        sa.Column(
            "customer_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "product_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("since", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.id"],
            name=op.f("fk_holdings_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_pk"],
            ["products.id"],
            name=op.f("fk_holdings_product_pk_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("customer_pk", "product_pk", name=op.f("pk_holdings")),
    )
    op.create_table(
        "interactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column(
            "customer_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "product_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("event_type", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("occurred_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("recommendation_id", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_pk"],
            ["customers.id"],
            name=op.f("fk_interactions_customer_pk_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_pk"],
            ["products.id"],
            name=op.f("fk_interactions_product_pk_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_interactions")),
        sa.UniqueConstraint("event_id", name=op.f("uq_interactions_event_id")),
    )
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interactions_customer_time", ["customer_pk", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_interactions_occurred_at", ["occurred_at"], unique=False)
        batch_op.create_index(
            "ix_interactions_recommendation_id", ["recommendation_id"], unique=False
        )

    op.create_table(
        "strategy_activations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("strategy", sa.String(length=32), nullable=False),
        sa.Column("version", sa.String(length=96), nullable=False),
        sa.Column("previous_version", sa.String(length=96), nullable=True),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("activated_at", app.db.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_by", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["version"],
            ["model_versions.version"],
            name=op.f("fk_strategy_activations_version_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_strategy_activations")),
        sa.UniqueConstraint("strategy", name="uq_strategy_activations_strategy"),
    )


def downgrade() -> None:

    op.drop_table("strategy_activations")
    with op.batch_alter_table("interactions", schema=None) as batch_op:
        batch_op.drop_index("ix_interactions_recommendation_id")
        batch_op.drop_index("ix_interactions_occurred_at")
        batch_op.drop_index("ix_interactions_customer_time")

    op.drop_table("interactions")
    op.drop_table("holdings")
    with op.batch_alter_table("products", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_products_status"))
        batch_op.drop_index(batch_op.f("ix_products_category"))

    op.drop_table("products")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_model_versions_algorithm"))

    op.drop_table("model_versions")
    op.drop_table("import_runs")
    op.drop_table("customers")
