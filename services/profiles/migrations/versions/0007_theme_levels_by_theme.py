"""theme levels by theme: the directory's offers/needs filters as ranges of one index

A level alone (the indexes this replaces) never narrowed a filter that names a theme: counting the directory with
`offers=ai:3` probed every city's themes (166 ms at 60,000 cities on SQLite; 23 ms from these).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 18:20:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_city_theme_theme_offer", "city_theme", ["theme", "offer", "city_id"])
    op.create_index("ix_city_theme_theme_need", "city_theme", ["theme", "need", "city_id"])
    op.drop_index("ix_city_theme_offer", table_name="city_theme")
    op.drop_index("ix_city_theme_need", table_name="city_theme")


def downgrade() -> None:
    op.create_index("ix_city_theme_need", "city_theme", ["need"])
    op.create_index("ix_city_theme_offer", "city_theme", ["offer"])
    op.drop_index("ix_city_theme_theme_need", table_name="city_theme")
    op.drop_index("ix_city_theme_theme_offer", table_name="city_theme")
