"""users' cities and roles as rows (user_city, user_role), filled from their JSON lists: who an event concerns is
found by an index, not by reading every user

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 01:40:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INDEXED = (("user_city", "city_id", 36, "city_ids"), ("user_role", "role", 20, "roles"))


def upgrade() -> None:
    tables = {}
    for table, column, length, _ in INDEXED:
        tables[table] = op.create_table(
            table,
            sa.Column(column, sa.String(length=length), nullable=False),
            sa.Column("user_id", sa.String(length=36), nullable=False),
            sa.ForeignKeyConstraint(
                ["user_id"], ["user_account.id"], name=op.f(f"fk_{table}_user_id_user_account"), ondelete="CASCADE"
            ),
            sa.PrimaryKeyConstraint(column, "user_id", name=op.f(f"pk_{table}")),
        )
    users = sa.table("user_account", sa.column("id"), sa.column("roles", sa.JSON), sa.column("city_ids", sa.JSON))
    rows = op.get_bind().execute(sa.select(users.c.id, users.c.roles, users.c.city_ids)).all()
    for table, column, _, source in INDEXED:
        values = [{"user_id": row.id, column: v} for row in rows for v in sorted(set(getattr(row, source) or []))]
        if values:
            op.bulk_insert(tables[table], values)


def downgrade() -> None:
    for table, *_ in INDEXED:
        op.drop_table(table)
