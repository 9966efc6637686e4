"""client webhook delivery

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 03:36:06.633847
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("webhook_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("webhook_next_at", UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("webhook_delivered_at", UTCDateTime(), nullable=True))
        batch_op.create_index(
            "ix_generations_webhook_due", ["webhook_delivered_at", "webhook_next_at"], unique=False
        )


def downgrade() -> None:

    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_webhook_due")
        batch_op.drop_column("webhook_delivered_at")
        batch_op.drop_column("webhook_next_at")
        batch_op.drop_column("webhook_attempts")
