"""awaited copies go first

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-27 23:10:00.000000

The media lease took the longest-waiting files first, so under a backlog a sync ``/run`` or a
client webhook, which wait up to ``GENQUEUE_MEDIA_WAIT`` for their generation's copy, waited
that long behind files nobody waits for. ``generations.copy_awaited`` says a ``/run`` waits
(a webhook says so by its URL); ``media_files.awaited_until`` is when that wait ends, and the
lease takes such files first. Its partial index is on ``awaited_until``, so the lease looks
through the files awaited now (a few seconds' completions), never through the expired ones of a
backlog. Rows from before the upgrade are awaited by nobody.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AWAITED = sa.text("status = 'pending' AND awaited_until IS NOT NULL")


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch: SQLite would rebuild ``generations``, and dropping the
    # old table would cascade to every row that references it.
    op.add_column(
        "generations",
        sa.Column("copy_awaited", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("media_files", sa.Column("awaited_until", UTCDateTime(), nullable=True))
    op.create_index(
        "ix_media_files_awaited",
        "media_files",
        ["awaited_until"],
        postgresql_where=AWAITED,
        sqlite_where=AWAITED,
    )


def downgrade() -> None:
    op.drop_index("ix_media_files_awaited", table_name="media_files")
    op.drop_column("media_files", "awaited_until")  # SQLite >= 3.35 drops a column in place
    op.drop_column("generations", "copy_awaited")
