"""submit retry time of its own

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 14:00:00.000000

A pending row whose submit failed for a moment waits out a retry delay. That time lived in
``next_poll_at``, which the dispatcher also moves a submit grace ahead when it publishes a row
(its safety net against a lost message), so a claim under ``GENQUEUE_MAX_IN_FLIGHT`` that read
``next_poll_at`` as the retry time found every retried row not yet due. ``retry_at`` is the
retry time alone: written with the delay, cleared when the row is claimed, never moved by the
dispatcher. Rows pending at the upgrade have none and may go at once, as untried rows do.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("retry_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_column("retry_at")
