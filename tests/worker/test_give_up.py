"""Ending a job for genqueue's own reasons (its deadline, its polls running out) asks upstream
first: a job upstream finished is fetched and completed, never thrown away. Real PostgreSQL,
the simulator over real HTTP."""

import time
import uuid
from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import wait_until
from models.status import GenerationStatus
from models.tables import Generation
from simulator import FaultRule
from tests.worker.lifecycle_support import (
    drive,
    kinds,
    lifecycle_env,
    load,
    new_job,
    submit_one,
    upstream_calls,
)
from worker.context import Limits, WorkerContext

LIMITS = Limits(lease_seconds=5.0, submit_grace=0.5, max_submit_attempts=4, max_poll_errors=6)


def _past_deadline(ctx: WorkerContext, gen_id: uuid.UUID) -> None:
    deadline = load(ctx, gen_id).deadline_at
    wait_until(lambda: datetime.now(UTC) > deadline, 10, what="the deadline to pass")


def _cancel_events(gen: Generation) -> list[dict[str, object]]:
    return [dict(e.detail or {}) for e in gen.events if e.kind == "cancel_sent"]


def test_a_job_finished_while_nobody_looked_is_completed_after_its_deadline(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=0.2) as (ctx, srv, rec):
        gen_id = new_job(ctx, deadline=1.0)
        assert submit_one(ctx, gen_id).value == "submitted"
        # No poll runs (a worker outage): upstream finishes, then the deadline passes.
        wait_until(lambda: srv.sim.stats()["jobs"]["completed"] == 1, 10, what="upstream done")
        _past_deadline(ctx, gen_id)
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED, gen.error
        upstream = upstream_calls(srv, gen)
        assert gen.result is not None
        assert gen.result["images"]
        assert upstream["cancel"] == 0
        assert upstream["result"] == 1
        assert "deadline_exceeded" not in kinds(gen)


def test_an_unfinished_job_is_cancelled_after_asking_and_fails_with_upstreams_answer(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=30.0) as (ctx, srv, rec):
        gen_id = new_job(ctx, deadline=1.0)
        submit_one(ctx, gen_id)
        _past_deadline(ctx, gen_id)
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert (gen.error["type"], gen.error["http_status"]) == ("deadline_exceeded", 499)
        assert gen.error["body"] is not None  # upstream's own answer is kept
        calls = upstream_calls(srv, gen)
        assert calls["cancel"] == 1
        assert calls["status"] >= 2
        [cancel] = _cancel_events(gen)
        assert cancel == {"outcome": "CANCELLATION_REQUESTED", "reason": "deadline"}
        assert kinds(gen)[-1] == "deadline_exceeded"


def test_a_job_that_finishes_despite_the_deadline_cancel_is_completed(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=1.5, honor_cancel=False) as (ctx, srv, rec):
        gen_id = new_job(ctx, deadline=0.6)
        submit_one(ctx, gen_id)
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED, gen.error
        assert gen.result is not None
        assert upstream_calls(srv, gen)["cancel"] == 1


def test_a_job_upstream_never_settles_fails_once_the_grace_is_over(
    private_sessions: sessionmaker[Session],
) -> None:
    limits = Limits(lease_seconds=5.0, submit_grace=0.5, deadline_grace=1.0)
    with lifecycle_env(private_sessions, limits=limits, run_time=30.0, honor_cancel=False) as (
        ctx,
        srv,
        rec,
    ):
        gen_id = new_job(ctx, deadline=0.5)
        submit_one(ctx, gen_id)
        started = time.monotonic()
        gen = drive(ctx, rec, gen_id)
        assert time.monotonic() - started >= 1.0  # polled on through the grace
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert gen.error["type"] == "deadline_exceeded"
        assert "had not ended it" in gen.error["message"]
        assert upstream_calls(srv, gen)["cancel"] == 1


def test_already_completed_at_the_cancel_fetches_the_result(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=0.2) as (ctx, srv, rec):
        gen_id = new_job(ctx, deadline=1.0)
        submit_one(ctx, gen_id)
        wait_until(lambda: srv.sim.stats()["jobs"]["completed"] == 1, 10, what="upstream done")
        _past_deadline(ctx, gen_id)
        # The status answer is stale (it finished just after): the cancel is what says so.
        stale: dict[str, object] = {
            "status": "IN_PROGRESS",
            "request_id": "r",
            "logs": None,
            "metrics": {},
        }
        srv.sim.add_fault(FaultRule(op="status", kind="http", status_code=202, body=stale, times=1))
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED, gen.error
        [cancel] = _cancel_events(gen)
        assert cancel["outcome"] == "ALREADY_COMPLETED"
        calls = upstream_calls(srv, gen)
        assert (calls["status"], calls["result"]) == (1, 1)  # fetched at once, not polled again


def test_polls_running_out_cancel_upstream_before_the_job_fails(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, limits=LIMITS, run_time=30.0) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="status", kind="http", status_code=500))
        gen_id = new_job(ctx)
        submit_one(ctx, gen_id)
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert gen.error["type"] == "retries_exhausted"
        assert gen.error["message"].endswith("upstream cancel: CANCELLATION_REQUESTED")
        assert upstream_calls(srv, gen)["cancel"] == 1
        [cancel] = _cancel_events(gen)
        assert cancel["reason"] == "retries_exhausted"


def test_polls_running_out_on_a_finished_job_still_fetch_its_result(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, limits=LIMITS, run_time=0.2) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="status", kind="http", status_code=500))
        gen_id = new_job(ctx)
        submit_one(ctx, gen_id)
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED, gen.error
        assert kinds(gen).count("poll_retry") == LIMITS.max_poll_errors - 1
        [cancel] = _cancel_events(gen)
        assert cancel["outcome"] == "ALREADY_COMPLETED"
