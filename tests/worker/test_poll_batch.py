"""A poll batch writes what its checks decided in one transaction, and one job whose write the
database refuses does not hold the others back. Real database, simulator over real HTTP."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, update
from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import wait_until
from models.status import GenerationStatus
from models.tables import Generation
from simulator import FaultRule, SimulatorServer
from tests.worker.lifecycle_support import (
    RecordingObserver,
    drive,
    kinds,
    lifecycle_env,
    load,
    new_job,
)
from worker.context import WorkerContext
from worker.lifecycle import poll as poll_module
from worker.lifecycle.poll import poll_generations
from worker.lifecycle.poll_outcome import LeasedRow, PollOutcome, apply_outcome
from worker.lifecycle.submit_batch import submit_generations


@contextmanager
def counting_commits(sessions: sessionmaker[Session]) -> Iterator[list[int]]:
    engine = sessions.kw["bind"]
    commits = [0]

    def on_commit(_conn: Any) -> None:
        commits[0] += 1

    event.listen(engine, "commit", on_commit)
    try:
        yield commits
    finally:
        event.remove(engine, "commit", on_commit)


def _lease(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> str:
    """Lease the rows to a batch token, as the dispatcher does."""
    token = str(uuid.uuid4())
    with sessions.begin() as session:
        session.execute(update(Generation).where(Generation.id.in_(ids)).values(lease_token=token))
    return token


def _submitted_and_done(ctx: WorkerContext, srv: SimulatorServer, count: int) -> list[uuid.UUID]:
    ids = [new_job(ctx, prompt=f"batch {i}") for i in range(count)]
    assert submit_generations(ctx, ids) == {"submitted": count}
    wait_until(lambda: srv.sim.stats()["jobs"]["completed"] >= count, 10, what="upstream to finish")
    return ids


def test_a_batch_is_claimed_and_written_in_two_commits(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=0.05) as (ctx, srv, _):
        ids = _submitted_and_done(ctx, srv, 20)
        token = _lease(private_sessions, ids)
        with counting_commits(private_sessions) as commits:
            assert poll_generations(ctx, ids, token) == {"completed": 20}
        assert commits[0] == 2  # the claim, then every job's write together (was 21)
        for gen_id in ids:
            gen = load(ctx, gen_id)
            assert gen.status == GenerationStatus.COMPLETED
            assert gen.result
            assert gen.lease_token is None
            assert kinds(gen)[-1] == "completed"


def test_a_write_the_database_refuses_does_not_hold_the_batch_back(
    private_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with lifecycle_env(private_sessions, run_time=0.05) as (ctx, srv, rec):
        ids = _submitted_and_done(ctx, srv, 6)
        victim = ids[3]
        real_apply = apply_outcome

        def apply(session: Session, outcome: PollOutcome) -> bool:
            won = real_apply(session, outcome)
            if outcome.row.id == victim and outcome.to is GenerationStatus.COMPLETED:
                raise ValueError("the database refused this row")
            return won

        monkeypatch.setattr(poll_module, "apply_outcome", apply)
        token = _lease(private_sessions, ids)
        poll_generations(ctx, ids, token)
        for gen_id in ids:
            gen = load(ctx, gen_id)
            if gen_id == victim:
                assert gen.status == GenerationStatus.QUEUED
                assert gen.result is None
                assert gen.lease_token is None
                error = next(e for e in gen.events if e.kind == "poll_error")
                assert error.detail is not None
                assert "refused this row" in error.detail["message"]
            else:
                assert gen.status == GenerationStatus.COMPLETED
                assert gen.result
        monkeypatch.setattr(poll_module, "apply_outcome", real_apply)
        # polled again, then recorded
        assert drive(ctx, rec, victim).status == GenerationStatus.COMPLETED


def test_the_observer_hears_only_of_writes_that_were_committed(
    private_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with lifecycle_env(private_sessions, run_time=30.0) as (ctx, srv, _):
        ctx.observer = observer = RecordingObserver()
        ids = [new_job(ctx, prompt=f"observed {i}") for i in range(2)]
        assert submit_generations(ctx, ids) == {"submitted": 2}
        observer.events.clear()
        srv.sim.add_fault(FaultRule(op="status", kind="http", status_code=500))
        taken = ids[0]
        real_read = poll_module._read_upstream

        def read(ctx: Any, row: LeasedRow, estimate: Any) -> PollOutcome:
            outcome = real_read(ctx, row, estimate)
            if row.id == taken:  # meanwhile, another poller took this row's lease
                with ctx.sessions.begin() as session:
                    session.execute(
                        update(Generation).where(Generation.id == taken).values(lease_token="other")
                    )
            return outcome

        monkeypatch.setattr(poll_module, "_read_upstream", read)
        assert poll_generations(ctx, ids, _lease(private_sessions, ids)) == {"retry": 2}
        assert kinds(load(ctx, taken))[-1] == "submitted"  # our write lost
        assert kinds(load(ctx, ids[1]))[-1] == "poll_retry"
        assert observer.events == [("retry", "poll")]  # one retry committed, one heard
