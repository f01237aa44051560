"""decision records: policy version, basis, risk class and removals on every exposure row

The exposure log already holds one row per served list; these columns make each row the
decision record (docs/decisions.md). On PostgreSQL a trigger keeps the table append-only:
UPDATE is refused always, DELETE unless the transaction set ``finrec.decision_prune`` (the
retention prune does, with SET LOCAL).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 23:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

_GUARD = """
CREATE FUNCTION finrec_exposures_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('finrec.decision_prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'decision records are append-only (% refused on exposures)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql
"""

_TRIGGER = """
CREATE TRIGGER exposures_append_only BEFORE UPDATE OR DELETE ON exposures
FOR EACH ROW EXECUTE FUNCTION finrec_exposures_append_only()
"""


def upgrade() -> None:
    with op.batch_alter_table("exposures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("basis", sa.String(length=24), nullable=True))
        batch_op.add_column(sa.Column("risk_class", sa.SmallInteger(), nullable=True))
        batch_op.add_column(sa.Column("removed", _JSON, nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_GUARD)
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS exposures_append_only ON exposures")
        op.execute("DROP FUNCTION IF EXISTS finrec_exposures_append_only()")
    with op.batch_alter_table("exposures", schema=None) as batch_op:
        batch_op.drop_column("removed")
        batch_op.drop_column("risk_class")
        batch_op.drop_column("basis")
        batch_op.drop_column("policy_version")
