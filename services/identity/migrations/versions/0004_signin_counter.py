"""signin_counter: sign-in throttle counters in the database, so that every replica shares them

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00

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
        "signin_counter",
        sa.Column("account", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", "address", name=op.f("pk_signin_counter")),
    )
    with op.batch_alter_table("signin_counter", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_signin_counter_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("signin_counter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_signin_counter_expires_at"))
    op.drop_table("signin_counter")
