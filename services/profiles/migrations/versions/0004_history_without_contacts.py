"""history without contacts: scrub the contacts that earlier history rows recorded

Anyone signed in reads a city's history; contacts are only for those who may edit the city. History
now records only that contacts changed (`{"contacts": "changed"}`); this rewrites the rows written
before in the same form. The old values are gone for good: downgrading does not bring them back.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 03:00:00

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 1000
city_change = sa.table("city_change", sa.column("seq", sa.Integer), sa.column("changes", sa.JSON))


def upgrade() -> None:
    """Replace every recorded contacts value with "changed", a batch of rows at a time."""
    conn = op.get_bind()
    mentions_contacts = sa.cast(city_change.c.changes, sa.Text).like('%"contacts"%')
    last = 0
    while True:
        rows = conn.execute(
            sa.select(city_change.c.seq, city_change.c.changes)
            .where(city_change.c.seq > last, mentions_contacts)
            .order_by(city_change.c.seq)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for seq, changes in rows:
            if "contacts" in changes and changes["contacts"] != "changed":
                scrubbed = {**changes, "contacts": "changed"}
                conn.execute(sa.update(city_change).where(city_change.c.seq == seq).values(changes=scrubbed))
        last = rows[-1][0]


def downgrade() -> None:
    """Nothing to undo: the scrubbed values cannot be restored."""
