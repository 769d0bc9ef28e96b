"""The web interface: server-side sessions, and each item's verdict and best match beside its JSON result (the
columns a report page filters, sorts and pages on); finished items are filled in from their results.

Revision ID: 0004_web
Revises: 0003_request_fingerprint
"""
from alembic import op
import sqlalchemy as sa

from fimg_service.storage.jobs import item_summary

revision = "0004_web"
down_revision = "0003_request_fingerprint"
branch_labels = None
depends_on = None

BACKFILL_BATCH = 2000
SUMMARY_COLUMNS = ("verdict", "kind", "bank", "distance")


def upgrade() -> None:
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_hash"),
    )
    op.create_index("ix_web_sessions_key_id", "web_sessions", ["key_id"])
    with op.batch_alter_table("job_items") as batch:
        batch.add_column(sa.Column("verdict", sa.String(20), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(60), nullable=True))
        batch.add_column(sa.Column("bank", sa.String(100), nullable=True))
        batch.add_column(sa.Column("distance", sa.Float(), nullable=True))
    for column in SUMMARY_COLUMNS:
        op.create_index(f"ix_job_items_{column}", "job_items", ["job_id", column, "idx"])
    _backfill()


def _backfill() -> None:
    items = sa.table("job_items", sa.column("id", sa.Integer), sa.column("result", sa.JSON),
                     sa.column("verdict"), sa.column("kind"), sa.column("bank"), sa.column("distance"))
    connection = op.get_bind()
    last = 0
    while rows := connection.execute(sa.select(items.c.id, items.c.result).where(
            items.c.id > last, items.c.result.is_not(None)).order_by(items.c.id).limit(BACKFILL_BATCH)).all():
        connection.execute(sa.update(items).where(items.c.id == sa.bindparam("item_id")),
                           [{"item_id": row.id, **item_summary(row.result)} for row in rows])
        last = rows[-1].id


def downgrade() -> None:
    for column in SUMMARY_COLUMNS:
        op.drop_index(f"ix_job_items_{column}", "job_items")
    with op.batch_alter_table("job_items") as batch:
        for column in SUMMARY_COLUMNS:
            batch.drop_column(column)
    op.drop_index("ix_web_sessions_key_id", "web_sessions")
    op.drop_table("web_sessions")
