"""``GET /v1/usage``: what the caller's tenant created and spent, by model and status."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.errors import invalid
from api.listing import as_utc
from api.openapi import SECURITY, errors
from api.schemas import Timestamp
from api.state import CallerDep, SessionDep, StateDep
from models.usage import month_start, usage

router = APIRouter(prefix="/v1", tags=["usage"])


class UsageLine(BaseModel):
    model: str
    status: str
    count: int
    estimated_cost: float = Field(description="USD, the estimates made at create")
    final_cost: float = Field(description="USD, what the ended jobs cost")


class Usage(BaseModel):
    tenant: str
    since: Timestamp
    until: Timestamp
    lines: list[UsageLine]
    count: int
    estimated_cost: float
    final_cost: float


def _instant(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(value)
    except OverflowError:
        raise invalid(["query", name], "Datetime is out of range", type="datetime_range") from None


@router.get(
    "/usage",
    response_model=Usage,
    summary="Usage and cost of the caller's tenant",
    description="Generations created in [since, until) (default: this calendar month, UTC, "
    "until now), counted by model and status, with their estimated and final costs in USD; "
    "a window with since at or after until is empty.",
    responses=errors(401, 422, 503),
    openapi_extra={"security": SECURITY},
)
def get_usage(
    caller: CallerDep,
    session: SessionDep,
    state: StateDep,
    since: Annotated[datetime | None, Query(description="default: start of this month")] = None,
    until: Annotated[datetime | None, Query(description="default: now")] = None,
) -> Usage:
    now = state.clock()
    start = _instant(since, "since") or month_start(now)
    end = _instant(until, "until") or now
    lines = [
        UsageLine(
            model=r.model,
            status=r.status,
            count=r.count,
            estimated_cost=r.estimated_cost,
            final_cost=r.final_cost,
        )
        for r in usage(session, caller.tenant_id, since=start, until=end)
    ]  # an empty window (since at or after until) counts nothing
    session.close()
    return Usage(
        tenant=caller.tenant,
        since=start,
        until=end,
        lines=lines,
        count=sum(line.count for line in lines),
        estimated_cost=round(sum(line.estimated_cost for line in lines), 6),
        final_cost=round(sum(line.final_cost for line in lines), 6),
    )
