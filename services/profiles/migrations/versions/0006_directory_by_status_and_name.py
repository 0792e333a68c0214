"""directory by status and name: the published cities in name order as a range of one index

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:20:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_city_status_name", "city", ["status", "name"])


def downgrade() -> None:
    op.drop_index("ix_city_status_name", table_name="city")
