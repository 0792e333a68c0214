"""public fields: the profile fields each city publishes as open data (none until its officials choose)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Every existing city starts with nothing public ('[]', the default the model writes for new ones)."""
    with op.batch_alter_table("city", schema=None) as batch_op:
        batch_op.add_column(sa.Column("public_fields", sa.JSON(), nullable=False, server_default=sa.text("'[]'")))


def downgrade() -> None:
    with op.batch_alter_table("city", schema=None) as batch_op:
        batch_op.drop_column("public_fields")
