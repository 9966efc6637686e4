"""Where a pending job stands in genqueue's own queue under fair scheduling: an estimate of
how many pending jobs the claim will take before it (worker/lifecycle/fair.py).

The claim orders pending jobs by their start tags: a tenant's ``k``-th pending job (in its own
order: priority, then age) starts at ``max(its finish tag, the system clock) + k × step``,
where ``step`` is the cost of a job divided by the tenant's weight. This estimate takes each
tenant's step from its last claimed job (its ``fair_finish - fair_start``; a tenant never
claimed takes the mean job cost of those that were, or 1) and counts, for every other tenant
with pending jobs, how many of them start before this one (a tie goes to the older job, as
in the claim; a tenant's oldest pending job stands for the one tied). Jobs that arrive later,
run times that differ from the last job's, caps and retries move the real order; positions
are recomputed on every look, so they converge as the job nears the front.
"""

import math

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from models.status import GenerationStatus
from models.tables import Generation, Tenant

PENDING = GenerationStatus.PENDING.value
EPSILON = 1e-9


def fair_position(session: Session, gen: Generation, *, limit: int) -> int:
    """Pending jobs ahead of pending ``gen`` in the fair order (at most ``limit``)."""
    mine = (Generation.priority, Generation.created_at, Generation.id)
    own_ahead = int(
        session.scalar(
            select(func.count()).select_from(
                select(Generation.id)
                .where(
                    Generation.tenant_id == gen.tenant_id,
                    Generation.status == PENDING,
                    tuple_(*mine) < tuple_(gen.priority, gen.created_at, gen.id),
                )
                .limit(limit)
                .subquery()
            )
        )
        or 0
    )
    waiting = (
        select(
            Generation.tenant_id,
            func.count().label("n"),
            func.min(Generation.created_at).label("oldest"),
        )
        .where(Generation.status == PENDING)
        .group_by(Generation.tenant_id)
        .subquery()
    )
    tenants = session.execute(
        select(
            Tenant.id,
            Tenant.fair_start,
            Tenant.fair_finish,
            Tenant.weight,
            waiting.c.n,
            waiting.c.oldest,
        ).join(waiting, waiting.c.tenant_id == Tenant.id)
    ).all()
    clock = float(session.scalar(select(func.coalesce(func.max(Tenant.fair_start), 0.0))) or 0)
    costs = [(f - s) * w for _, s, f, w, _, _ in tenants if f > s]
    mean_cost = sum(costs) / len(costs) if costs else 1.0

    def step(start: float, finish: float, weight: float) -> float:
        return finish - start if finish > start else mean_cost / weight

    own = session.get(Tenant, gen.tenant_id)
    if own is None:
        return min(own_ahead, limit)
    my_start = max(own.fair_finish, clock) + own_ahead * step(
        own.fair_start, own.fair_finish, own.weight
    )
    ahead = own_ahead

    def base_of(finish: float) -> float:
        return max(finish, clock)

    for tenant_id, start, finish, weight, count, oldest in tenants:
        if tenant_id == gen.tenant_id or my_start < base_of(finish) - EPSILON:
            continue
        # Its jobs that start before this one, and one that starts with it when its jobs are
        # older (the claim breaks ties by age; its oldest stands for the one tied).
        slots = (my_start - base_of(finish)) / step(start, finish, weight)
        before = math.ceil(slots - EPSILON)
        if abs(slots - round(slots)) < EPSILON and oldest < gen.created_at:
            before += 1
        ahead += min(int(count), max(0, before))
    return min(ahead, limit)
