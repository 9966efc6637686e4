"""the media listing looks only through results not listed yet

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 02:05:00.000000

The media tick's listing (``models/media.py``: ``expand_pending``) found results to list as the
generations whose ``media_status`` is ``pending`` and that have no ``media_files`` row yet: a
scan of every result still being copied, a backlog included, once a second during a tick.
``generations.media_listed_at`` is set when a result's files are listed, in the same
transaction, and a partial index holds the pending results not listed yet, so the listing reads
only those. Results listed before the upgrade get the time their first file row was made.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNLISTED = sa.text("media_status = 'pending' AND media_listed_at IS NULL")


def upgrade() -> None:
    # Plain ADD COLUMN, never a batch: SQLite would rebuild ``generations``, and dropping the
    # old table would cascade to every row that references it.
    op.add_column("generations", sa.Column("media_listed_at", UTCDateTime(), nullable=True))
    op.execute(
        "UPDATE generations SET media_listed_at = ("
        " SELECT min(media_files.created_at) FROM media_files"
        " WHERE media_files.generation_id = generations.id)"
        " WHERE EXISTS ("
        " SELECT 1 FROM media_files WHERE media_files.generation_id = generations.id)"
    )
    op.create_index(
        "ix_generations_media_unlisted",
        "generations",
        ["completed_at"],
        postgresql_where=UNLISTED,
        sqlite_where=UNLISTED,
    )


def downgrade() -> None:
    op.drop_index("ix_generations_media_unlisted", table_name="generations")
    op.drop_column("generations", "media_listed_at")  # SQLite >= 3.35 drops a column in place
