"""Tenant settings (``genqueue tenants set``) and what each tenant has in the system now."""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from models.status import LIVE, GenerationStatus
from models.tables import Generation, Tenant

SETTINGS = ("max_in_flight", "rate_limit", "burst", "weight", "monthly_budget")
"""The tenant columns an operator sets; ``None`` clears one (``weight`` cannot be cleared)."""


class UnknownTenant(LookupError):
    """No tenant of that name (tenants come from ``genqueue keys create NAME --tenant T``)."""


def check_settings(changes: dict[str, Any]) -> list[str]:
    """What is wrong with ``changes``, one message a setting; empty when all is well."""
    problems = []
    for name, value in changes.items():
        if name not in SETTINGS:
            problems.append(f"{name}: not a tenant setting")
        elif value is None:
            if name == "weight":
                problems.append("weight: cannot be cleared (it is 1 by default)")
        elif name in ("max_in_flight", "burst") and (not isinstance(value, int) or value < 1):
            problems.append(f"{name}: must be a whole number of at least 1, got {value!r}")
        elif name in ("rate_limit", "weight") and not (0 < float(value) < float("inf")):
            problems.append(f"{name}: must be a number above 0, got {value!r}")
        elif name == "monthly_budget" and not (0 <= float(value) < float("inf")):
            problems.append(f"{name}: must be a number of USD of at least 0, got {value!r}")
    return problems


def set_tenant(session: Session, name: str, changes: dict[str, Any]) -> Tenant:
    """Change a tenant's settings (live: the claim and the API read them on their next use).
    Raises ``UnknownTenant`` or ``ValueError`` (with every problem) and changes nothing then."""
    problems = check_settings(changes)
    if problems:
        raise ValueError("; ".join(problems))
    tenant = session.scalar(select(Tenant).where(Tenant.name == name).with_for_update())
    if tenant is None:
        raise UnknownTenant(name)
    for key, value in changes.items():
        setattr(tenant, key, value)
    session.flush()
    return tenant


@dataclass(frozen=True)
class TenantOverview:
    name: str
    max_in_flight: int | None
    rate_limit: float | None
    burst: int | None
    weight: float
    monthly_budget: float | None
    live: int
    pending: int


def list_tenants(session: Session) -> list[TenantOverview]:
    """Every tenant with its settings and its jobs live upstream and pending now."""
    live_values = [s.value for s in LIVE]
    counts = (
        select(
            Generation.tenant_id,
            func.sum(case((Generation.status.in_(live_values), 1), else_=0)).label("live"),
            func.sum(case((Generation.status == GenerationStatus.PENDING.value, 1), else_=0)).label(
                "pending"
            ),
        )
        .where(Generation.status.in_([*live_values, GenerationStatus.PENDING.value]))
        .group_by(Generation.tenant_id)
        .subquery()
    )
    rows = session.execute(
        select(Tenant, func.coalesce(counts.c.live, 0), func.coalesce(counts.c.pending, 0))
        .outerjoin(counts, counts.c.tenant_id == Tenant.id)
        .order_by(Tenant.name)
    ).all()
    return [
        TenantOverview(
            t.name,
            t.max_in_flight,
            t.rate_limit,
            t.burst,
            t.weight,
            t.monthly_budget,
            int(live),
            int(pending),
        )
        for t, live, pending in rows
    ]
