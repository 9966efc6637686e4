"""outbound webhooks: stopped deliveries, signing secrets, the delivery log

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 12:00:00.000000

``webhook_stopped_at``: a delivery that will not be tried again although it never got a 2xx
(its destination is refused by the address policy, the receiver answered 410, or the retries
ran out); set for the deliveries abandoned before it (ten failed tries). ``tenants.webhook_secret*``: each tenant's Standard Webhooks signing secret and the
one before its last rotation, both encrypted (models/secretbox.py), and when it was rotated. ``webhook_deliveries``: one row per delivery attempt (the tenant's
delivery log).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from models.types import BigIntPK, UTCDateTime

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_stopped_at", UTCDateTime(), nullable=True))
    # Deliveries abandoned before this column (ten failed tries) are stopped.
    generations = sa.table(
        "generations",
        sa.column("webhook_url", sa.Text()),
        sa.column("webhook_delivered_at", UTCDateTime()),
        sa.column("webhook_attempts", sa.Integer()),
        sa.column("webhook_stopped_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    op.execute(
        generations.update()
        .where(
            generations.c.webhook_url.is_not(None),
            generations.c.webhook_delivered_at.is_(None),
            generations.c.webhook_attempts >= 10,
        )
        .values(webhook_stopped_at=generations.c.updated_at)
    )
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("webhook_secret", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("webhook_secret_previous", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("webhook_secret_rotated_at", UTCDateTime(), nullable=True))

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", BigIntPK, autoincrement=True, nullable=False),
        sa.Column("generation_id", sa.Uuid(), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=300), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["generation_id"],
            ["generations.id"],
            name=op.f("fk_webhook_deliveries_generation_id_generations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_generation_id"),
        "webhook_deliveries",
        ["generation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_webhook_deliveries_generation_id"), table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("webhook_secret_rotated_at")
        batch_op.drop_column("webhook_secret_previous")
        batch_op.drop_column("webhook_secret")
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_column("webhook_stopped_at")
