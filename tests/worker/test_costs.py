"""A job's final cost, written by the worker when it ends: upstream's billable units at the
job's unit price, else the estimate (completed) or nothing (failed, cancelled)."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.generations import NewGeneration, insert_generations, request_cancel
from models.keys import create_key
from models.pricing import estimate
from models.status import GenerationStatus
from simulator import FaultRule
from tests.worker.lifecycle_support import MODEL, drive, lifecycle_env, load, submit_one
from worker.context import WorkerContext
from worker.upstream.protocol import billable_units

PRICE = 0.05


def priced_job(ctx: WorkerContext, **input: object) -> uuid.UUID:
    full = {"prompt": "priced", **input}
    price, cost = estimate(MODEL, full, {MODEL: PRICE})
    with ctx.sessions.begin() as session:
        key, _ = create_key(session, name=f"cost-{uuid.uuid4().hex[:8]}")
        [row] = insert_generations(
            session,
            [NewGeneration(key.tenant_id, MODEL, full, unit_price=price, estimated_cost=cost)],
            now=datetime.now(UTC),
            deadline_seconds=60,
            submit_grace_seconds=0.5,
        )
    return row.id


def test_completed_failed_and_never_sent_jobs_cost_what_upstream_billed(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, validate="result") as (ctx, srv, rec):
        two = priced_job(ctx, num_images=2)
        rejected = priced_job(ctx, num_images=9)  # the simulator bills a deferred 422 as 0
        srv.sim.add_fault(
            FaultRule(op="any", kind="model_error", status_code=503, match_prompt="doomed")
        )
        doomed = priced_job(ctx, prompt="doomed")  # fails upstream, no units reported
        never = priced_job(ctx)
        with ctx.sessions.begin() as session:
            request_cancel(session, never, now=datetime.now(UTC))
        for gen_id in (two, rejected, doomed):
            submit_one(ctx, gen_id)
        done = drive(ctx, rec, two)
        assert done.status == GenerationStatus.COMPLETED
        assert done.billable_units == 2.0
        assert done.final_cost == pytest.approx(2 * PRICE)
        assert done.estimated_cost == pytest.approx(2 * PRICE)
        failed = drive(ctx, rec, rejected)
        assert failed.status == GenerationStatus.FAILED
        assert (failed.billable_units, failed.final_cost) == (0.0, 0.0)
        assert failed.estimated_cost == pytest.approx(9 * PRICE)
        broken = drive(ctx, rec, doomed)
        assert broken.status == GenerationStatus.FAILED
        assert (broken.billable_units, broken.final_cost) == (None, 0.0)
        cancelled = load(ctx, never)
        assert cancelled.status == GenerationStatus.CANCELLED
        assert cancelled.final_cost is None  # never sent upstream: not charged


@pytest.mark.parametrize(
    ("header", "units"),
    [("2", 2.0), ("0", 0.0), ("1.5", 1.5), ("-1", None), ("many", None), ("inf", None)],
)
def test_billable_units_header(header: str, units: float | None) -> None:
    import httpx

    assert billable_units(httpx.Headers({"x-fal-billable-units": header})) == units
    assert billable_units(httpx.Headers()) is None
