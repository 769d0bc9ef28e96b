"""Banks and galleries belong to a case: an owner (a key) and members (the case team).

An existing bank or gallery is owned by the key that created it; one made by the command line (no key) has no
owner, so only admins see it until an admin adds members.

Revision ID: 0005_case_access
Revises: 0004_web
"""
from alembic import op
import sqlalchemy as sa

revision = "0005_case_access"
down_revision = "0004_web"
branch_labels = None
depends_on = None

_TZ = sa.DateTime(timezone=True)
CASES = (("banks", "bank_members", "bank_id"), ("galleries", "gallery_members", "gallery_id"))


def upgrade() -> None:
    for table, members, object_column in CASES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(f"fk_{table}_owner_id_api_keys", "api_keys", ["owner_id"], ["id"])
            batch.create_index(f"ix_{table}_owner_id", ["owner_id"])
        op.execute(f"UPDATE {table} SET owner_id = created_by")
        op.create_table(
            members,
            sa.Column(object_column, sa.Integer(), nullable=False),
            sa.Column("key_id", sa.Integer(), nullable=False),
            sa.Column("added_at", _TZ, nullable=False),
            sa.ForeignKeyConstraint([object_column], [f"{table}.id"], ondelete="CASCADE"),
            sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"]),
            sa.PrimaryKeyConstraint(object_column, "key_id"),
        )
        op.create_index(f"ix_{members}_key_id", members, ["key_id"])


def downgrade() -> None:
    for table, members, _ in reversed(CASES):
        op.drop_table(members)
        with op.batch_alter_table(table) as batch:
            batch.drop_index(f"ix_{table}_owner_id")
            batch.drop_constraint(f"fk_{table}_owner_id_api_keys", type_="foreignkey")
            batch.drop_column("owner_id")
