"""the directory by country in name order: a range of (country_code, name, id), which replaces the index on
country_code alone (a country's cities were read whole and sorted for each page)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 01:40:00

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_city_country_name", "city", ["country_code", "name", "id"])
    op.drop_index("ix_city_country_code", table_name="city")


def downgrade() -> None:
    op.create_index("ix_city_country_code", "city", ["country_code"])
    op.drop_index("ix_city_country_name", table_name="city")
