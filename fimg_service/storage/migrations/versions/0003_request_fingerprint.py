"""Jobs remember what request their idempotency key was used for, so the key with another body is refused.

Revision ID: 0003_request_fingerprint
Revises: 0002_record_provenance
"""
from alembic import op
import sqlalchemy as sa

revision = "0003_request_fingerprint"
down_revision = "0002_record_provenance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("request_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("request_sha256")
