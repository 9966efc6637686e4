"""upstream webhooks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 12:00:00.000000

A job submitted with ``?fal_webhook=`` records that it expects fal's webhook
(``expects_webhook``): its polls are then a sparse safety net.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN, also on SQLite: a batch "move and copy" of generations would drop the
    # old table, and its events with it (ON DELETE CASCADE).
    op.add_column(
        "generations",
        sa.Column("expects_webhook", sa.Boolean(), server_default=sa.false(), nullable=False),
    )


def downgrade() -> None:
    op.drop_column("generations", "expects_webhook")  # SQLite >= 3.35 drops a column in place
