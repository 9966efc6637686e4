"""tenant settings, fair scheduling and costs

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 12:00:00.000000

Each tenant gets its settings (``max_in_flight``, ``rate_limit``, ``burst``, ``weight``,
``monthly_budget``) and the scheduler's virtual clock (``fair_start``, ``fair_finish``: start-time
fair queuing, worker/lifecycle/fair.py). Each generation gets a ``priority`` (0 high, 1 normal,
2 low), an index that lists a tenant's pending rows in the order the claim takes them, and its
costs (``unit_price``, ``estimated_cost``, ``final_cost``, ``billable_units``: models/pricing.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PENDING = sa.text("status = 'pending'")
COSTS = ("unit_price", "estimated_cost", "final_cost", "billable_units")


def upgrade() -> None:
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_in_flight", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("rate_limit", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("burst", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("weight", sa.Float(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("monthly_budget", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("fair_start", sa.Float(), server_default="0", nullable=False))
        batch_op.add_column(
            sa.Column("fair_finish", sa.Float(), server_default="0", nullable=False)
        )
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="1", nullable=False)
        )
        for column in COSTS:
            batch_op.add_column(sa.Column(column, sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_generations_pending_order",
            ["tenant_id", "priority", "created_at", "id"],
            unique=False,
            postgresql_where=PENDING,
            sqlite_where=PENDING,
        )


def downgrade() -> None:
    with op.batch_alter_table("generations", schema=None) as batch_op:
        batch_op.drop_index("ix_generations_pending_order")
        batch_op.drop_column("priority")
        for column in reversed(COSTS):
            batch_op.drop_column(column)
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        for column in (
            "fair_finish",
            "fair_start",
            "monthly_budget",
            "weight",
            "burst",
            "rate_limit",
            "max_in_flight",
        ):
            batch_op.drop_column(column)
