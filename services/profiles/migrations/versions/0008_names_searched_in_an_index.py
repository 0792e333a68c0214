"""names searched in an index: the directory's `q` scans (name, id, search_text), not the table's wide rows

The index also serves what `ix_city_name` did (pages in name order), which it replaces.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:50:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_city_name_search", "city", ["name", "id", "search_text"])
    op.drop_index("ix_city_name", table_name="city")


def downgrade() -> None:
    op.create_index("ix_city_name", "city", ["name"])
    op.drop_index("ix_city_name_search", table_name="city")
