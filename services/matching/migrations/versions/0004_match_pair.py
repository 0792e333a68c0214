"""match pair: the row decisions on a pair lock

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:30:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "match_pair",
        sa.Column("city_a", sa.String(length=36), nullable=False),
        sa.Column("city_b", sa.String(length=36), nullable=False),
        sa.Column("decisions", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("city_a", "city_b", name=op.f("pk_match_pair")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("match_pair")
