"""one open proposal per set of member cities (a partial unique index)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 01:20:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The open states of the workflow when this was written (workflow.OPEN).
OPEN_PROPOSAL = sa.text("status IN ('changes_requested', 'draft', 'submitted', 'under_review')")


def upgrade() -> None:
    """Upgrade schema (fails, naming the index, if two open proposals already share their cities)."""
    op.create_index(
        "uq_proposal_open_member_key",
        "proposal",
        ["member_key"],
        unique=True,
        sqlite_where=OPEN_PROPOSAL,
        postgresql_where=OPEN_PROPOSAL,
    )


def downgrade() -> None:
    """Downgrade schema."""
    op.drop_index("uq_proposal_open_member_key", table_name="proposal")
