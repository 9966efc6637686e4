"""``GET /v1/overview``: the caller's tenant at a glance, for the console's overview page.

Counts by status, the tenant's jobs live upstream against the cap that applies to them, and the
time to result of its last hour's completed generations. Only the caller's tenant is counted:
the global cap is a setting, not another tenant's load.
"""

from datetime import timedelta

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import func, select

from api.openapi import SECURITY, errors
from api.state import CallerDep, SessionDep, StateDep
from models.status import LIVE, GenerationStatus
from models.tables import Generation, Tenant

router = APIRouter(prefix="/v1", tags=["overview"])
WINDOW = timedelta(hours=1)
MAX_SAMPLES = 10_000
"""Completed generations the percentiles are read from (the newest of the window)."""


class TimeToResult(BaseModel):
    completed: int = Field(description="completed generations in the window (at most 10,000)")
    p50_seconds: float | None
    p99_seconds: float | None


class Overview(BaseModel):
    counts: dict[GenerationStatus, int] = Field(description="the tenant's generations by status")
    live: int = Field(description="the tenant's generations submitting, queued or running")
    live_cap: int | None = Field(
        description="the cap on them: the tenant's max_in_flight, or the global "
        "GENQUEUE_MAX_IN_FLIGHT when lower; null: no cap"
    )
    last_hour: TimeToResult = Field(description="creation to completion, last hour")
    flower_url: str = Field(description="Flower, for task-level detail")


def percentile(sorted_values: list[float], share: float) -> float | None:
    """The nearest-rank percentile (``share`` 0..1) of ascending values; None if empty."""
    if not sorted_values:
        return None
    rank = max(1, -(-int(share * 1000) * len(sorted_values) // 1000))  # ceil, exact in ints
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _live_cap(tenant_cap: int | None, global_cap: int) -> int | None:
    caps = [c for c in (tenant_cap, global_cap or None) if c]
    return min(caps) if caps else None


@router.get(
    "/overview",
    response_model=Overview,
    summary="Counts by status, live jobs against the cap, time to result",
    responses=errors(401, 503),
    openapi_extra={"security": SECURITY},
)
def overview(caller: CallerDep, session: SessionDep, state: StateDep) -> Overview:
    mine = Generation.tenant_id == caller.tenant_id
    rows = session.execute(
        select(Generation.status, func.count()).where(mine).group_by(Generation.status)
    ).all()
    counts = {status: 0 for status in GenerationStatus}
    counts.update({GenerationStatus(status): int(n) for status, n in rows})
    since = state.clock() - WINDOW
    times = session.execute(
        select(Generation.created_at, Generation.completed_at)
        .where(
            mine,
            Generation.status == GenerationStatus.COMPLETED.value,
            Generation.completed_at >= since,
        )
        .order_by(Generation.completed_at.desc())
        .limit(MAX_SAMPLES)
    ).all()
    seconds = sorted((done - created).total_seconds() for created, done in times if done)
    tenant_cap = session.scalar(select(Tenant.max_in_flight).where(Tenant.id == caller.tenant_id))
    session.close()
    settings = state.settings
    return Overview(
        counts=counts,
        live=sum(counts[s] for s in LIVE),
        live_cap=_live_cap(tenant_cap, settings.max_in_flight),
        last_hour=TimeToResult(
            completed=len(seconds),
            p50_seconds=percentile(seconds, 0.50),
            p99_seconds=percentile(seconds, 0.99),
        ),
        flower_url=settings.console_flower_url
        or f"http://{settings.flower_host}:{settings.flower_port}",
    )
