"""Bank records carry their provenance (source, the source's entry id, member id) and state (enabled,
disabled until a unix time).

Revision ID: 0002_record_provenance
Revises: 0001_initial
"""
from alembic import op
import sqlalchemy as sa

revision = "0002_record_provenance"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("bank_records") as batch:
        batch.add_column(sa.Column("source", sa.String(200), nullable=True))
        batch.add_column(sa.Column("source_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("member_id", sa.String(200), nullable=True))
        batch.add_column(sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch.add_column(sa.Column("disabled_until", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bank_records") as batch:
        for column in ("disabled_until", "enabled", "member_id", "source_id", "source"):
            batch.drop_column(column)
