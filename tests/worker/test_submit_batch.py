"""Batched submits called directly: a real database (PostgreSQL, and SQLite where the claim
differs), the simulator over real HTTP. One claim, concurrent submits, one write-back."""

import contextlib
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import wait_until
from migrations.runner import upgrade
from models import tasknames
from models.db import make_engine, make_session_factory
from models.status import GenerationStatus
from models.tables import Generation
from simulator import FaultRule, SimulatorServer
from tests.support.services import PostgresServer
from tests.worker.lifecycle_support import (
    KEY,
    RecordingObserver,
    drive,
    kinds,
    lifecycle_env,
    load,
    new_job,
    run_published,
    submit_one,
)
from worker.context import Limits
from worker.lifecycle import submit_batch
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.reconcile import reconcile
from worker.lifecycle.submit_batch import submit_generations
from worker.lifecycle.submit_outcome import SubmitResult, record_answer
from worker.upstream import UpstreamClient


def limits(**overrides: Any) -> Limits:
    return Limits(
        **{"lease_seconds": 5.0, "submit_grace": 0.5, "max_submit_attempts": 4, **overrides}
    )


def live_upstream(sessions: sessionmaker[Session]) -> int:
    """Rows live upstream now (the module's other tests leave some)."""
    with sessions() as session:
        live = session.scalar(
            select(func.count())
            .select_from(Generation)
            .where(Generation.status.in_(["submitting", "queued", "running"]))
        )
    return int(live or 0)


def marker() -> str:
    return uuid.uuid4().hex[:8]


def accepted(srv: SimulatorServer, prompt: str) -> list[dict[str, Any]]:
    """The simulator's accepted submits of the job(s) with this prompt."""
    return [s for s in srv.sim.submits() if s["request_id"] and s["body"]["prompt"] == prompt]


def patient_client(srv: SimulatorServer) -> UpstreamClient:
    """A client that waits out a slow answer (lifecycle_env's would time out: ambiguous)."""
    return UpstreamClient(base_url=srv.url, key=KEY, read_timeout=10.0)


def expire_lease(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> None:
    """What time does to a lease: let it run out now, so the reconciler takes the rows."""
    with sessions.begin() as session:
        session.execute(
            update(Generation)
            .where(Generation.id.in_(ids))
            .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_a_batch_is_claimed_once_and_each_row_submitted_once(
    sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(sessions, limits=limits(submit_batch_size=32)) as (ctx, srv, _):
        tag = marker()
        ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(20)]
        assert submit_generations(ctx, ids) == {"submitted": 20}
        gens = [load(ctx, i) for i in ids]
        request_ids = set()
        for i, gen in enumerate(gens):
            assert gen.status == GenerationStatus.QUEUED
            assert gen.submit_attempts == 1
            assert gen.lease_token is None
            assert gen.lease_until is None
            assert gen.next_poll_at is not None
            assert gen.submitted_at is not None
            [submit] = accepted(srv, f"{tag} {i}")
            assert submit["request_id"] == gen.upstream_request_id
            assert submit["body"] == gen.input
            request_ids.add(gen.upstream_request_id)
            # The history the single path has always written.
            assert [(e.kind, e.status, e.detail) for e in gen.events] == [
                ("created", "pending", None),
                ("status", "submitting", {"attempt": 1}),
                ("submitted", "queued", {"request_id": gen.upstream_request_id, "attempt": 1}),
            ]
            assert gen.events[-1].queue_position == gen.queue_position
        assert len(request_ids) == 20
        # One claim transaction: every row's claim event carries the same time.
        assert len({e.at for g in gens for e in g.events if e.kind == "status"}) == 1


def test_a_second_and_a_concurrent_delivery_do_nothing(sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(sessions, limits=limits(submit_batch_size=32)) as (ctx, srv, _):
        tag = marker()
        ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(20)]
        with ThreadPoolExecutor(2) as pool:  # two workers got the same message
            both = list(pool.map(lambda _: submit_generations(ctx, ids), range(2)))
        assert sum((Counter(r) for r in both), Counter()) == {"submitted": 20, "skipped": 20}
        histories = {i: kinds(load(ctx, i)) for i in ids}
        assert submit_generations(ctx, ids) == {"skipped": 20}  # and a late redelivery
        assert submit_one(ctx, ids[0]) is SubmitResult.SKIPPED
        for i in range(20):
            assert len(accepted(srv, f"{tag} {i}")) == 1
        assert {i: kinds(load(ctx, i)) for i in ids} == histories
        assert all(h == ["created", "status", "submitted"] for h in histories.values())


def test_submits_of_a_batch_run_concurrently(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions, limits=limits(submit_batch_size=8)) as (ctx, srv, _):
        tag = marker()
        ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(8)]
        srv.sim.add_fault(FaultRule(op="submit", kind="hang", delay=0.5, match_prompt=tag))
        assert submit_generations(ctx, ids) == {"submitted": 8}
        # Each submit is held 0.5 s before upstream accepts it. One after another, the
        # acceptances would lie at least 7 × 0.5 s apart; side by side, they land together.
        times = sorted(s["at"] for i in range(8) for s in accepted(srv, f"{tag} {i}"))
        assert len(times) == 8
        assert times[-1] - times[0] < 7 * 0.5 / 2, times


def test_a_delivery_larger_than_a_wave_is_claimed_wave_by_wave(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, limits=limits(submit_batch_size=4)) as (ctx, srv, _):
        tag = marker()
        ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(10)]
        assert submit_generations(ctx, ids) == {"submitted": 10}
        gens = [load(ctx, i) for i in ids]
        claimed_at = [next(e.at for e in g.events if e.kind == "status") for g in gens]
        assert [len(set(claimed_at[i : i + 4])) for i in (0, 4, 8)] == [1, 1, 1]
        assert len(set(claimed_at)) == 3
        assert all(len(accepted(srv, f"{tag} {i}")) == 1 for i in range(10))


def test_mixed_outcomes_in_one_batch_are_each_recorded(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, limits=limits(submit_batch_size=32)) as (ctx, srv, rec):
        ctx.observer = observer = RecordingObserver()
        tag = marker()
        srv.sim.add_fault(
            FaultRule(
                op="submit", kind="http", status_code=503, match_prompt=f"{tag} busy", times=1
            )
        )
        srv.sim.add_fault(
            FaultRule(
                op="submit",
                kind="retry_after",
                retry_after=1,
                match_prompt=f"{tag} throttled",
                times=1,
            )
        )
        srv.sim.add_fault(
            FaultRule(op="submit", kind="accept_then_reset", match_prompt=f"{tag} reset", times=1)
        )
        ok = [new_job(ctx, prompt=f"{tag} ok {i}") for i in range(3)]
        bad = new_job(ctx, prompt=f"{tag} bad", guidance_scale=25)  # the simulator answers 422
        busy = new_job(ctx, prompt=f"{tag} busy")
        throttled = new_job(ctx, prompt=f"{tag} throttled")
        reset = new_job(ctx, prompt=f"{tag} reset")
        before = datetime.now(UTC)
        outcome = submit_generations(ctx, [*ok, bad, busy, throttled, reset])
        assert outcome == {"submitted": 3, "failed": 1, "retry": 2, "ambiguous": 1}

        for gen_id in ok:
            assert load(ctx, gen_id).status == GenerationStatus.QUEUED
        failed = load(ctx, bad)
        assert failed.status == GenerationStatus.FAILED
        assert failed.error is not None
        assert (failed.error["type"], failed.error["http_status"]) == ("upstream_rejected", 422)
        assert failed.error["body"]["detail"][0]["loc"] == ["body", "guidance_scale"]
        assert kinds(failed) == ["created", "status", "failed"]
        assert failed.lease_token is None
        for gen_id, code in ((busy, 503), (throttled, 429)):
            gen = load(ctx, gen_id)
            assert gen.status == GenerationStatus.PENDING
            assert gen.lease_token is None
            assert gen.error is not None
            assert gen.error["http_status"] == code
            [retry] = [e for e in gen.events if e.kind == "submit_retry"]
            assert retry.detail is not None
            assert retry.detail["http_status"] == code
        throttled_gen = load(ctx, throttled)
        assert throttled_gen.next_poll_at is not None
        assert throttled_gen.next_poll_at >= before + timedelta(seconds=1)  # Retry-After
        ambiguous = load(ctx, reset)
        assert ambiguous.status == GenerationStatus.PENDING
        assert kinds(ambiguous)[-1] == "submit_ambiguous"
        assert ambiguous.events[-1].detail is not None
        assert ambiguous.events[-1].detail["policy"] == "resubmit"
        assert len(accepted(srv, f"{tag} reset")) == 1  # upstream has it; we could not know

        assert Counter(observer.events) == {
            ("submit", "submitted"): 3,
            ("submit", "failed"): 1,
            ("terminal", "failed"): 1,
            ("retry", "submit"): 2,
            ("submit", "retry"): 2,
            ("submit", "ambiguous"): 1,
        }
        for gen_id in (busy, throttled, reset):
            assert drive(ctx, rec, gen_id).status == GenerationStatus.COMPLETED
        assert len(accepted(srv, f"{tag} busy")) == len(accepted(srv, f"{tag} throttled")) == 1
        assert len(accepted(srv, f"{tag} reset")) == 2  # the documented cost of resubmitting


def test_max_in_flight_claims_only_the_free_slots(private_sessions: sessionmaker[Session]) -> None:
    cap = live_upstream(private_sessions) + 5  # rows the module's other tests left live
    env = lifecycle_env(private_sessions, limits=limits(max_in_flight=cap), run_time=30.0)
    with env as (ctx, srv, _):
        ctx.observer = observer = RecordingObserver()
        tag = marker()
        earlier = [new_job(ctx, prompt=f"{tag} earlier {i}") for i in range(2)]
        assert submit_generations(ctx, earlier) == {"submitted": 2}
        ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(6)]
        before = datetime.now(UTC)
        assert submit_generations(ctx, ids) == {"submitted": 3, "deferred": 3}
        after = datetime.now(UTC)
        gens = [load(ctx, i) for i in ids]
        sent = [g for g in gens if g.status == GenerationStatus.QUEUED]
        held = [g for g in gens if g.status == GenerationStatus.PENDING]
        assert [g.id for g in sent] == ids[:3]  # oldest first
        for gen in held:
            assert kinds(gen) == ["created"]
            assert gen.submit_attempts == 0
            assert gen.next_poll_at is not None
            assert before + timedelta(seconds=1) <= gen.next_poll_at <= after + timedelta(seconds=1)
        assert sum(len(accepted(srv, f"{tag} {i}")) for i in range(6)) == 3
        assert observer.events.count(("submit", "deferred")) == 3


def test_a_row_past_its_deadline_fails_without_being_sent(
    sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(sessions) as (ctx, srv, _):
        ctx.observer = observer = RecordingObserver()
        tag = marker()
        late, fresh = new_job(ctx, prompt=f"{tag} late"), new_job(ctx, prompt=f"{tag} fresh")
        with ctx.sessions.begin() as session:
            session.execute(
                update(Generation)
                .where(Generation.id == late)
                .values(deadline_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert submit_generations(ctx, [late, fresh]) == {"failed": 1, "submitted": 1}
        gen = load(ctx, late)
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert gen.error["type"] == "deadline_exceeded"
        assert kinds(gen) == ["created", "deadline_exceeded"]
        assert accepted(srv, f"{tag} late") == []
        assert len(accepted(srv, f"{tag} fresh")) == 1
        assert observer.events.count(("terminal", "failed")) == 1


def test_a_lost_lease_records_submit_orphaned_and_cancels_upstream(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=5.0) as (ctx, srv, rec):
        ctx.client = patient = patient_client(srv)
        tag = marker()
        srv.sim.add_fault(
            FaultRule(op="submit", kind="hang", delay=1.5, match_prompt=f"{tag} slow", times=1)
        )
        fast = [new_job(ctx, prompt=f"{tag} fast {i}") for i in range(2)]
        slow = new_job(ctx, prompt=f"{tag} slow")
        with ThreadPoolExecutor(1) as pool:
            batch = pool.submit(submit_generations, ctx, [*fast, slow])
            wait_until(
                lambda: load(ctx, slow).status == GenerationStatus.SUBMITTING, 5, what="the claim"
            )
            expire_lease(ctx.sessions, [slow])  # the slow submit outlives its lease
            reconcile(ctx)
            assert (
                load(ctx, slow).status == GenerationStatus.PENDING
            )  # taken back: resolved as ambiguous
            assert batch.result(timeout=15) == {"submitted": 2, "skipped": 1}
        assert all(load(ctx, i).status == GenerationStatus.QUEUED for i in fast)
        gen = load(ctx, slow)
        assert kinds(gen) == ["created", "status", "submit_ambiguous", "submit_orphaned"]
        orphan = gen.events[-1].detail
        assert orphan is not None
        assert orphan["reason"] == "lease lost before the answer"
        [first] = accepted(srv, f"{tag} slow")
        assert orphan["request_id"] == first["request_id"]
        info = srv.sim.request_info(first["request_id"])
        assert info is not None
        assert info["calls"]["cancel"] == 1
        assert info["cancel_requested"]
        done = drive(ctx, rec, slow)
        assert done.status == GenerationStatus.COMPLETED
        assert done.upstream_request_id != first["request_id"]
        assert len(accepted(srv, f"{tag} slow")) == 2
        patient.close()


def test_a_failed_write_back_leaves_the_rows_to_the_reconciler() -> None:
    """The database goes down while the wave is upstream: the write-back raises, the rows stay
    ``submitting`` under their lease, nothing is reported, and once the lease runs out the
    reconciler resolves them as ambiguous submits."""
    server = PostgresServer()
    server.start()
    try:
        url = server.admin_url
        upgrade(url)
        engine = make_engine(url)
        with lifecycle_env(make_session_factory(engine)) as (ctx, srv, rec):
            ctx.observer = observer = RecordingObserver()
            ctx.client = patient = patient_client(srv)
            tag = marker()
            srv.sim.add_fault(FaultRule(op="submit", kind="hang", delay=2.0, match_prompt=tag))
            ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(3)]
            with ThreadPoolExecutor(1) as pool:
                batch = pool.submit(submit_generations, ctx, ids)
                wait_until(
                    lambda: all(load(ctx, i).status == GenerationStatus.SUBMITTING for i in ids),
                    5,
                    what="claim",
                )
                server.stop()
                with pytest.raises(OperationalError):
                    batch.result(timeout=30)
            server.start()
            srv.sim.clear_faults()
            assert observer.events == []
            for i, gen_id in enumerate(ids):
                gen = load(ctx, gen_id)
                assert gen.status == GenerationStatus.SUBMITTING
                assert gen.lease_token is not None
                assert kinds(gen) == ["created", "status"]
                assert len(accepted(srv, f"{tag} {i}")) == 1  # upstream took it; we never heard
            expire_lease(ctx.sessions, ids)
            assert reconcile(ctx)["lost_submits"] == 3
            assert all(kinds(load(ctx, i))[-1] == "submit_ambiguous" for i in ids)
            for i, gen_id in enumerate(ids):
                assert drive(ctx, rec, gen_id).status == GenerationStatus.COMPLETED
                assert len(accepted(srv, f"{tag} {i}")) == 2  # the policy's documented cost
            patient.close()
        engine.dispose()
    finally:
        server.close()


def test_the_dispatcher_publishes_submit_many_chunks(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, limits=limits(submit_batch_size=4)) as (ctx, srv, rec):
        tag = marker()
        ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(10)]
        long_ago = datetime.now(UTC) - timedelta(hours=1)
        with ctx.sessions.begin() as session:  # due, and before anything else in the database
            for n, gen_id in enumerate(ids):
                session.execute(
                    update(Generation)
                    .where(Generation.id == gen_id)
                    .values(next_poll_at=long_ago + timedelta(seconds=n))
                )
        assert dispatch_due(ctx)["submits"] >= 10
        published = rec.published
        assert {name for name, _ in published} <= {tasknames.SUBMIT_MANY, tasknames.POLL_BATCH}
        chunks = [args[0] for name, args in published if name == tasknames.SUBMIT_MANY]
        assert all(1 <= len(chunk) <= 4 for chunk in chunks)
        ours = [i for chunk in chunks for i in chunk if uuid.UUID(i) in set(ids)]
        assert ours == [str(i) for i in ids]  # each once, oldest first
        assert chunks[:2] == [[str(i) for i in ids[:4]], [str(i) for i in ids[4:8]]]
        run_published(ctx, rec)
        for i, gen_id in enumerate(ids):
            assert load(ctx, gen_id).status in (
                GenerationStatus.QUEUED,
                GenerationStatus.RUNNING,
                GenerationStatus.COMPLETED,
            )
            assert len(accepted(srv, f"{tag} {i}")) == 1


def test_one_answer_the_database_refuses_leaves_only_its_row_to_the_reconciler(
    private_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, _):
        ids = [new_job(ctx, prompt=f"refused {i}") for i in range(5)]
        victim = ids[2]
        real = record_answer

        def record(ctx: Any, session: Session, answer: Any) -> Any:
            recorded = real(ctx, session, answer)
            if answer.claim.id == victim:
                session.flush()
                raise ValueError("the database refused this answer")
            return recorded

        monkeypatch.setattr(submit_batch, "record_answer", record)
        counts = submit_generations(ctx, ids)
        assert counts == {"submitted": 4, "ambiguous": 1}
        for gen_id in ids:
            gen = load(ctx, gen_id)
            if gen_id == victim:  # as if its worker had died: the reconciler's, by policy
                assert gen.status == GenerationStatus.SUBMITTING
                assert gen.lease_token is not None
            else:
                assert gen.status == GenerationStatus.QUEUED
                assert gen.upstream_request_id
        assert len(srv.sim.submits()) == 5  # nothing was sent twice meanwhile


def test_concurrent_claims_never_exceed_max_in_flight(
    private_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Eight claims at once, each of two rows, under a cap of four free slots. Every claim
    counts the live rows and then waits for the others to have counted too (a barrier that
    gives up after a second): without serialized claims all eight see four free slots."""
    cap = live_upstream(private_sessions) + 4
    env = lifecycle_env(private_sessions, limits=limits(max_in_flight=cap), run_time=30.0)
    barrier = threading.Barrier(8)
    counted = submit_batch._free_slots

    def count_then_wait(ctx: Any, session: Session, *, wanted: int) -> int:
        free = counted(ctx, session, wanted=wanted)
        # When the claims take turns the others cannot reach the barrier: it breaks.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=1.0)
        return free

    monkeypatch.setattr(submit_batch, "_free_slots", count_then_wait)
    with env as (ctx, srv, _):
        tag = marker()
        ids = [new_job(ctx, prompt=f"{tag} {i}") for i in range(16)]
        with ThreadPoolExecutor(8) as pool:
            results = list(
                pool.map(lambda i: submit_generations(ctx, ids[i : i + 2]), range(0, 16, 2))
            )
        assert sum(r.get("submitted", 0) for r in results) == 4, results
        assert sum(r.get("deferred", 0) for r in results) == 12, results
        statuses = Counter(load(ctx, i).status for i in ids)
        assert statuses == {GenerationStatus.QUEUED: 4, GenerationStatus.PENDING: 12}
        assert sum(len(accepted(srv, f"{tag} {i}")) for i in range(16)) == 4
