"""Who goes upstream next when slots are scarce: weighted fair share across tenants, then the
tenant's own priority, then age. One statement picks a whole wave.

The share is start-time fair queuing (SFQ; Goyal, Vin and Cheng, 1996), the stateful form of
deficit round robin: every tenant has a virtual clock in seconds of expected run time divided by
its ``weight``. A tenant's next job starts at ``max(its finish tag, the system clock)`` and
finishes ``cost / weight`` later, where ``cost`` is the expected run time of the job's model; the
claim takes the jobs with the smallest start tags. The system clock is the largest start tag
claimed so far, so a tenant that was idle comes back level with the others, with no credit saved
up (a burst after a quiet week would starve everyone). Over time each backlogged tenant holds
upstream slots for a share of the time proportional to its weight; a tenant alone gets all of
them.

A tenant at its own ``max_in_flight`` is skipped: its ``k``-th pending job is eligible only if
``live + k <= max_in_flight``. The claim that calls this holds the cap lock
(``submit_batch.CAP_LOCK``), so counts and tags are read and written by one claim at a time.

On PostgreSQL each tenant's pending rows are read through ``ix_generations_pending_order`` with
a ``LATERAL`` join, at most ``limit`` rows a tenant, so a flood of 50,000 pending rows costs the
claim no more than a few dozen; SQLite (one machine, small queues) ranks every pending row.
"""

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    Integer,
    Select,
    bindparam,
    case,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.orm import Session, aliased

from models.status import LIVE, GenerationStatus
from models.tables import Generation, Tenant

DEFAULT_COST = 1.0
"""Expected run seconds of a job whose model has no recent run times (nor any other model)."""


@dataclass(frozen=True)
class Pick:
    id: uuid.UUID
    tenant_id: uuid.UUID
    start: float
    """Virtual start tag: the order of the wave."""
    finish: float
    """The tenant's finish tag once this job is claimed: where its next job starts."""


def eligible(now: datetime | BindParameter[datetime]) -> list[ColumnElement[bool]]:
    """Pending rows a claim may take now: not past their deadline, and not waiting out a
    retry delay (``retry_at``; ``next_poll_at`` is only the dispatcher's safety net against a
    lost message, and a deferred row's reminder, so it gates nothing here)."""
    return [
        Generation.status == GenerationStatus.PENDING.value,
        Generation.deadline_at > now,
        or_(Generation.retry_at.is_(None), Generation.retry_at <= now),
    ]


def pick(
    session: Session,
    *,
    now: datetime,
    limit: int,
    within: Sequence[uuid.UUID] | None = None,
    costs: Mapping[str, float] | None = None,
) -> list[Pick]:
    """Up to ``limit`` eligible pending rows (only among ``within`` if given) in fair order,
    with the tags :func:`charge` records once they are claimed. ``costs``: expected run
    seconds by model (others cost their mean, or ``DEFAULT_COST``). One round trip."""
    if limit <= 0:
        return []
    known = dict(costs or {})
    models = tuple(sorted(known))
    dialect = session.get_bind().dialect.name
    stmt = _statement(dialect, within is not None, models)
    params: dict[str, Any] = {
        "now": now,
        "wave": limit,
        "fallback": sum(known.values()) / len(known) if known else DEFAULT_COST,
        **{f"cost_{i}": known[model] for i, model in enumerate(models)},
    }
    if within is not None:
        params["within"] = list(within)
    picks = []
    for gen_id, tenant_id, start, job_cost, weight in session.execute(stmt, params).all():
        picks.append(Pick(gen_id, tenant_id, float(start), float(start) + job_cost / weight))
    return picks


@functools.lru_cache(maxsize=64)
def _statement(dialect: str, within: bool, models: tuple[str, ...]) -> Select[Any]:
    """The pick for a dialect, with or without ``within``, for these priced models: built
    once, run with parameters (``now``, ``wave``, ``fallback``, ``cost_<i>``, ``within``)."""
    fallback = bindparam("fallback", type_=Float)
    cost: ColumnElement[Any] = (
        case(
            {m: bindparam(f"cost_{i}", type_=Float) for i, m in enumerate(models)},
            value=Generation.model,
            else_=fallback,
        )
        if models
        else fallback
    )
    where = eligible(bindparam("now", type_=Generation.deadline_at.type))
    if within:
        where.append(Generation.id.in_(bindparam("within", expanding=True)))
    columns = (
        Generation.id,
        Generation.tenant_id,
        Generation.priority,
        Generation.created_at,
        cost.label("cost"),
    )
    order = (Generation.priority, Generation.created_at, Generation.id)
    wave = bindparam("wave", type_=Integer)
    if dialect == "postgresql":
        outer = aliased(Tenant)
        head = (
            select(*columns)
            .where(Generation.tenant_id == outer.id, *where)
            .order_by(*order)
            .limit(wave)
            .lateral("head")
        )
        rows = select(head).select_from(outer).join(head, true()).subquery("rows")
    else:
        rows = select(*columns).where(*where).subquery("rows")
    return _fair_order(rows, wave=wave)


def _fair_order(rows: Any, *, wave: BindParameter[int]) -> Select[Any]:
    clock = select(func.coalesce(func.max(Tenant.fair_start), 0.0)).scalar_subquery()
    tenant_order = (rows.c.priority, rows.c.created_at, rows.c.id)
    ranked = select(
        rows.c.id,
        rows.c.tenant_id,
        rows.c.created_at,
        rows.c.cost,
        func.row_number().over(partition_by=rows.c.tenant_id, order_by=tenant_order).label("k"),
        (
            func.sum(rows.c.cost).over(partition_by=rows.c.tenant_id, order_by=tenant_order)
            - rows.c.cost
        ).label("before"),
    ).subquery("ranked")
    live = (
        select(Generation.tenant_id, func.count().label("n"))
        .where(Generation.status.in_([s.value for s in LIVE]))
        .group_by(Generation.tenant_id)
        .subquery("live")
    )
    base = case((Tenant.fair_finish > clock, Tenant.fair_finish), else_=clock)
    start = (base + ranked.c.before / Tenant.weight).label("start")
    return (
        select(ranked.c.id, ranked.c.tenant_id, start, ranked.c.cost, Tenant.weight)
        .join_from(ranked, Tenant, Tenant.id == ranked.c.tenant_id)
        .outerjoin(live, live.c.tenant_id == ranked.c.tenant_id)
        .where(
            ranked.c.k <= wave,
            or_(
                Tenant.max_in_flight.is_(None),
                func.coalesce(live.c.n, 0) + ranked.c.k <= Tenant.max_in_flight,
            ),
        )
        .order_by(start, ranked.c.created_at, ranked.c.id)
        .limit(wave)
    )


def charge(session: Session, picks: Sequence[Pick]) -> None:
    """Move the clocks of the tenants whose picks were claimed: each tenant's last claimed
    job sets its start and finish tags."""
    last: dict[uuid.UUID, Pick] = {}
    for p in picks:
        if p.tenant_id not in last or p.start >= last[p.tenant_id].start:
            last[p.tenant_id] = p
    if last:  # one statement, executed for each tenant (in id order: no lock-order deadlock)
        session.execute(
            update(Tenant).execution_options(synchronize_session=False),
            [
                {"id": tenant_id, "fair_start": p.start, "fair_finish": p.finish}
                for tenant_id, p in sorted(last.items())
            ],
        )
