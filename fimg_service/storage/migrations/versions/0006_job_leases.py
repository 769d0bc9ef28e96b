"""A pending item being worked on carries a lease (which dispatcher, until when), so several service replicas on
one database share a job's items without doing one twice.

Revision ID: 0006_job_leases
Revises: 0005_case_access
"""
from alembic import op
import sqlalchemy as sa

revision = "0006_job_leases"
down_revision = "0005_case_access"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("job_items") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(100), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_job_items_lease_owner", "job_items", ["lease_owner"])


def downgrade() -> None:
    op.drop_index("ix_job_items_lease_owner", table_name="job_items")
    with op.batch_alter_table("job_items") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_owner")
