"""the relay's next batch from a partial index of the unpublished rows (by the primary key, PostgreSQL walked past
every published row still kept)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 21:30:00

"""

from collections.abc import Sequence

from citypair_shared.migrations import create_outbox_unpublished_index, drop_outbox_unpublished_index

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_unpublished_index()


def downgrade() -> None:
    drop_outbox_unpublished_index()
