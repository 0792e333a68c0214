"""round publication: who published a round and when; unmatched reasons as the vocabulary's keys

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 12:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The sentences rounds stored before the reasons became keys (UnmatchedReason); the pages name the keys.
OLD_REASONS = {
    "at capacity": "at_capacity",
    "no allowed partner": "no_allowed_partner",
    "its candidates were paired with others": "paired_elsewhere",
}
ROUNDS = sa.table("match_round", sa.column("id", sa.String), sa.column("unmatched", sa.JSON))


def _key(reason: str) -> str:
    return next((key for start, key in OLD_REASONS.items() if reason.startswith(start)), reason)


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table("match_round", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("published_by", sa.String(length=36), nullable=True))
    conn = op.get_bind()
    for round_id, unmatched in conn.execute(sa.select(ROUNDS.c.id, ROUNDS.c.unmatched)).all():
        keyed = [{**u, "reason": _key(u["reason"])} for u in unmatched]
        if keyed != unmatched:
            conn.execute(ROUNDS.update().where(ROUNDS.c.id == round_id).values(unmatched=keyed))


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("match_round", schema=None) as batch_op:
        batch_op.drop_column("published_by")
        batch_op.drop_column("published_at")
