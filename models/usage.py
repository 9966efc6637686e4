"""What a tenant spent: month-to-date spend (budgets) and usage by model and status."""

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models.status import TERMINAL
from models.tables import Generation

TERMINAL_VALUES = [s.value for s in TERMINAL]


def month_start(now: datetime) -> datetime:
    """The first instant of ``now``'s calendar month (``now`` in UTC)."""
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_spend(session: Session, tenant_id: uuid.UUID, *, now: datetime) -> float:
    """USD of the tenant's jobs created this calendar month (UTC): the final cost of those
    that ended, the estimate of those still pending or live."""
    spend = case(
        (Generation.status.in_(TERMINAL_VALUES), func.coalesce(Generation.final_cost, 0.0)),
        else_=func.coalesce(Generation.estimated_cost, 0.0),
    )
    total = session.scalar(
        select(func.coalesce(func.sum(spend), 0.0)).where(
            Generation.tenant_id == tenant_id, Generation.created_at >= month_start(now)
        )
    )
    return float(total or 0.0)


@dataclass(frozen=True)
class UsageRow:
    model: str
    status: str
    count: int
    estimated_cost: float
    """USD, the estimates of these jobs."""
    final_cost: float
    """USD, what the ended ones cost (nothing for those never sent upstream)."""


def usage(
    session: Session, tenant_id: uuid.UUID, *, since: datetime, until: datetime
) -> list[UsageRow]:
    """The tenant's jobs created in [since, until), by model and status."""
    rows = session.execute(
        select(
            Generation.model,
            Generation.status,
            func.count(),
            func.coalesce(func.sum(Generation.estimated_cost), 0.0),
            func.coalesce(func.sum(Generation.final_cost), 0.0),
        )
        .where(
            Generation.tenant_id == tenant_id,
            Generation.created_at >= since,
            Generation.created_at < until,
        )
        .group_by(Generation.model, Generation.status)
        .order_by(Generation.model, Generation.status)
    ).all()
    return [
        UsageRow(model, status, int(n), round(float(est or 0), 6), round(float(final or 0), 6))
        for model, status, n, est, final in rows
    ]
