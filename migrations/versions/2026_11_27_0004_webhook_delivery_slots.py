"""webhook delivery slots

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 10:00:00.000000

Client webhook deliveries are bounded per destination and in total: each attempt in flight
holds ``webhook_lease_until``, and ``webhook_destination`` (``scheme://host:port``) is what the
per-destination cap counts by.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_destination", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("webhook_lease_until", UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_generations_webhook_in_flight", ["webhook_lease_until"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_webhook_in_flight")
        batch_op.drop_column("webhook_lease_until")
        batch_op.drop_column("webhook_destination")
