"""job slot: periodic work once per period across replicas

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 01:45:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema."""
    op.create_table(
        "job_slot",
        sa.Column("job", sa.String(length=60), nullable=False),
        sa.Column("slot", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("job", name=op.f("pk_job_slot")),
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_table("job_slot")
