"""Lifecycle functions called directly: real PostgreSQL, the simulator over real HTTP."""

import hashlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.generations import request_cancel
from models.history import positions_in
from models.status import GenerationStatus
from models.tables import Generation
from simulator import FaultRule
from tests.worker.lifecycle_support import (
    KEY,
    RecordingObserver,
    drive,
    kinds,
    lifecycle_env,
    load,
    new_job,
    submit_one,
    upstream_calls,
)
from worker.context import Limits
from worker.lifecycle.dispatch import dispatch_due
from worker.lifecycle.poll import poll_generations
from worker.lifecycle.reconcile import reconcile
from worker.lifecycle.submit_outcome import SubmitResult

SEED_INPUT: dict[str, Any] = {
    "prompt": "Extreme close-up of a single tiger eye, direct frontal view.",
    "guidance_scale": 3.5,
    "num_images": 1,
    "output_format": "jpeg",
    "safety_tolerance": "2",
    "aspect_ratio": "1:1",
}


def test_submit_records_the_handle_and_sends_exactly_once(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, _):
        gen_id = new_job(ctx, **{k: v for k, v in SEED_INPUT.items() if k != "prompt"})
        assert submit_one(ctx, gen_id) is SubmitResult.SUBMITTED
        assert submit_one(ctx, gen_id) is SubmitResult.SKIPPED  # a second delivery
        gen = load(ctx, gen_id)
        assert gen.status == GenerationStatus.QUEUED
        assert gen.upstream_request_id
        assert gen.status_url
        assert gen.status_url.startswith(srv.url)
        assert gen.submit_attempts == 1
        assert kinds(gen) == ["created", "status", "submitted"]
        [submit] = srv.sim.submits()
        assert submit["request_id"] == gen.upstream_request_id
        assert submit["body"] == gen.input
        assert submit["auth_scheme"] == "Key"
        assert submit["auth_sha256"] == hashlib.sha256(f"Key {KEY}".encode()).hexdigest()


def test_full_lifecycle_to_completed(private_sessions: sessionmaker[Session]) -> None:
    # Each blocker runs 1.5 s, so the third is still second in line when its submit lands
    # (at 0.3 s a loaded machine could finish the first blocker between two submits).
    with lifecycle_env(private_sessions, capacity=1, run_time=1.5) as (ctx, srv, rec):
        blockers = [new_job(ctx, prompt=f"blocker {i}") for i in range(2)]
        gen_id = new_job(
            ctx, prompt="third", num_images=2, output_format="png", aspect_ratio="16:9"
        )
        for job in [*blockers, gen_id]:
            submit_one(ctx, job)
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED, gen.error
        assert gen.result is not None
        assert len(gen.result["images"]) == 2
        assert {(i["width"], i["height"], i["content_type"]) for i in gen.result["images"]} == {
            (1392, 752, "image/png")
        }
        positions = [p for _, p in positions_in(gen.events)]  # every position, runs included
        assert positions
        assert positions[0] == 1
        assert positions[-1] == 0
        assert "running" in [e.status for e in gen.events]
        assert gen.completed_at
        assert gen.started_at
        assert gen.submitted_at
        assert gen.run_seconds is not None
        assert gen.run_seconds > 0
        calls = upstream_calls(srv, gen)
        assert calls["submit"] == 1
        assert calls["result"] == 1
        assert calls["status"] == gen.poll_count


def test_422_at_submit_fails_once_with_the_upstream_body(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, _):
        gen_id = new_job(ctx, guidance_scale=25)
        assert submit_one(ctx, gen_id) is SubmitResult.FAILED
        gen = load(ctx, gen_id)
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert gen.error["type"] == "upstream_rejected"
        assert gen.error["http_status"] == 422
        assert gen.error["body"]["detail"][0]["loc"] == ["body", "guidance_scale"]
        assert len(srv.sim.submits()) == 1


def test_429_is_retried_after_retry_after(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="submit", kind="retry_after", retry_after=1, times=2))
        gen_id = new_job(ctx)
        before = datetime.now(UTC)
        assert submit_one(ctx, gen_id) is SubmitResult.RETRY
        gen = load(ctx, gen_id)
        assert gen.status == GenerationStatus.PENDING
        assert gen.next_poll_at is not None
        assert gen.next_poll_at >= before + timedelta(seconds=1)
        retry = next(e for e in gen.events if e.kind == "submit_retry")
        assert retry.detail is not None
        assert retry.detail["http_status"] == 429
        assert retry.detail["retry_after"] == 1
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED
        assert gen.submit_attempts == 3
        accepted = [s for s in srv.sim.submits() if s["request_id"]]
        assert len(accepted) == 1


def test_submit_retries_until_the_deadline_and_keeps_the_last_error(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="submit", kind="http", status_code=503))
        gen_id = new_job(ctx, deadline=1.5)
        submit_one(ctx, gen_id)
        pending = load(ctx, gen_id)
        assert pending.status == GenerationStatus.PENDING
        assert pending.error is not None
        assert pending.error["http_status"] == 503  # why it is still pending, visible to clients
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert gen.error["type"] == "deadline_exceeded"
        assert gen.error["http_status"] == 503
        assert "last upstream error" in gen.error["message"]
        assert srv.sim.stats()["calls"]["submit"] == gen.submit_attempts >= 2
        assert srv.sim.submits() == [] or all(s["request_id"] is None for s in srv.sim.submits())


def test_ambiguous_submit_is_recorded_then_resubmitted(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="submit", kind="accept_then_reset", times=1))
        gen_id = new_job(ctx)
        assert submit_one(ctx, gen_id) is SubmitResult.AMBIGUOUS
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED
        assert kinds(gen).count("submit_ambiguous") == 1
        assert len([s for s in srv.sim.submits() if s["request_id"]]) == 2  # the documented cost


def test_ambiguous_submit_with_fail_policy_never_resubmits(
    private_sessions: sessionmaker[Session],
) -> None:
    limits = Limits(lease_seconds=5, submit_grace=0.5, ambiguous_submit="fail")
    with lifecycle_env(private_sessions, limits=limits) as (ctx, srv, _):
        srv.sim.add_fault(FaultRule(op="submit", kind="accept_then_reset", times=1))
        gen_id = new_job(ctx)
        assert submit_one(ctx, gen_id) is SubmitResult.FAILED
        gen = load(ctx, gen_id)
        assert gen.error is not None
        assert gen.error["type"] == "submit_ambiguous"
        assert len(srv.sim.submits()) == 1


def test_connect_error_is_a_plain_retry(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions) as (ctx, _, _rec):
        from worker.upstream import UpstreamClient

        ctx.client = UpstreamClient(base_url="http://127.0.0.1:9", key=KEY, connect_timeout=1.0)
        gen_id = new_job(ctx)
        assert submit_one(ctx, gen_id) is SubmitResult.RETRY
        assert "submit_ambiguous" not in kinds(load(ctx, gen_id))


def test_cancel_while_queued_ends_cancelled(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions, capacity=1, run_time=5.0) as (ctx, srv, rec):
        blocker, gen_id = new_job(ctx, prompt="blocker"), new_job(ctx, prompt="victim")
        submit_one(ctx, blocker)
        submit_one(ctx, gen_id)
        with ctx.sessions.begin() as session:
            assert request_cancel(session, gen_id, now=datetime.now(UTC)).outcome == "requested"
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.CANCELLED
        assert gen.error is not None
        assert gen.error["http_status"] == 499
        assert upstream_calls(srv, gen)["cancel"] == 1
        assert "cancel_sent" in kinds(gen)


def test_cancel_too_late_ends_completed_and_says_so(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, honor_cancel=False, run_time=1.0) as (ctx, _, rec):
        gen_id = new_job(ctx)
        submit_one(ctx, gen_id)
        drive(ctx, rec, gen_id, until={GenerationStatus.RUNNING})
        with ctx.sessions.begin() as session:
            request_cancel(session, gen_id, now=datetime.now(UTC))
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.COMPLETED
        assert gen.cancel_requested_at is not None
        done = next(e for e in gen.events if e.kind == "completed")
        assert done.detail is not None
        assert "too late" in done.detail["note"]


def test_deferred_422_and_model_errors_keep_the_upstream_answer(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, validate="result") as (ctx, srv, rec):
        bad = new_job(ctx, num_images=9)
        srv.sim.add_fault(
            FaultRule(
                op="any",
                kind="model_error",
                status_code=503,
                error_type="runner_disconnected",
                match_prompt="doomed",
            )
        )
        doomed = new_job(ctx, prompt="doomed")
        for gen_id in (bad, doomed):
            submit_one(ctx, gen_id)
        bad_gen, doomed_gen = drive(ctx, rec, bad), drive(ctx, rec, doomed)
        assert bad_gen.status == GenerationStatus.FAILED
        assert bad_gen.error is not None
        assert bad_gen.error["http_status"] == 422
        assert bad_gen.error["body"]["detail"][0]["loc"] == ["body", "num_images"]
        assert doomed_gen.status == GenerationStatus.FAILED
        assert doomed_gen.error is not None
        assert (doomed_gen.error["http_status"], doomed_gen.error["error_type"]) == (
            503,
            "runner_disconnected",
        )


def test_expired_result_fails_clearly(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="result", kind="expire_result"))
        gen = drive(ctx, rec, new_job(ctx))
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert (gen.error["type"], gen.error["http_status"]) == ("result_unavailable", 404)


def test_status_storm_is_ridden_out(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="status", kind="http", status_code=500, times=2))
        srv.sim.add_fault(FaultRule(op="status", kind="ingress_502", times=1))
        srv.sim.add_fault(FaultRule(op="status", kind="retry_after", retry_after=0.2, times=1))
        gen = drive(ctx, rec, new_job(ctx))
        assert gen.status == GenerationStatus.COMPLETED
        assert kinds(gen).count("poll_retry") == 4
        assert gen.error_count == 0


def test_deadline_fails_and_cancels_upstream(private_sessions: sessionmaker[Session]) -> None:
    with lifecycle_env(private_sessions, run_time=30.0) as (ctx, srv, rec):
        gen_id = new_job(ctx, deadline=1.0)
        submit_one(ctx, gen_id)
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.FAILED
        assert gen.error is not None
        assert gen.error["type"] == "deadline_exceeded"
        assert upstream_calls(srv, gen)["cancel"] == 1


def test_duplicate_poll_delivery_calls_upstream_once(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=5.0) as (ctx, srv, rec):
        gen_id = new_job(ctx)
        submit_one(ctx, gen_id)
        with ctx.sessions.begin() as session:
            session.execute(
                update(Generation)
                .where(Generation.id == gen_id)
                .values(next_poll_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        dispatch_due(ctx)
        [(_, args)] = [p for p in rec.drain() if p[0] == "generation.poll_batch"]
        ids = [uuid.UUID(i) for i in args[0]]
        assert poll_generations(ctx, ids, args[1]) in ({"queued": 1}, {"running": 1})
        assert poll_generations(ctx, ids, args[1]) == {}
        gen = load(ctx, gen_id)
        assert upstream_calls(srv, gen)["status"] == 1


def test_reconciler_resolves_a_submit_whose_worker_died(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, rec):
        gen_id = new_job(ctx)
        with ctx.sessions.begin() as session:  # what a worker killed mid-submit leaves behind
            session.execute(
                update(Generation)
                .where(Generation.id == gen_id)
                .values(
                    status="submitting",
                    lease_token="dead",
                    submit_attempts=1,
                    lease_until=datetime.now(UTC) - timedelta(seconds=1),
                )
            )
        assert reconcile(ctx)["lost_submits"] == 1
        gen = load(ctx, gen_id)
        assert gen.status == GenerationStatus.PENDING
        assert kinds(gen)[-1] == "submit_ambiguous"
        assert drive(ctx, rec, gen_id).status == GenerationStatus.COMPLETED
        assert len(srv.sim.submits()) == 1


def test_the_observer_sees_outcomes_retries_and_the_end(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, rec):
        ctx.observer = observer = RecordingObserver()
        srv.sim.add_fault(FaultRule(op="submit", kind="retry_after", retry_after=0.1, times=1))
        srv.sim.add_fault(FaultRule(op="status", kind="http", status_code=500, times=1))
        gen = drive(ctx, rec, new_job(ctx))
        assert gen.status == GenerationStatus.COMPLETED
        assert observer.events == [
            ("retry", "submit"),
            ("submit", "retry"),
            ("submit", "submitted"),
            ("retry", "poll"),
            ("terminal", "completed"),
        ]


def test_cancel_while_submitting_is_sent_once_the_handle_arrives(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, run_time=5.0) as (ctx, srv, rec):
        srv.sim.add_fault(FaultRule(op="submit", kind="hang", delay=0.6, times=1))
        gen_id = new_job(ctx)
        with ThreadPoolExecutor(1) as pool:
            submitting = pool.submit(submit_one, ctx, gen_id)
            drive(ctx, rec, gen_id, until={GenerationStatus.SUBMITTING}, timeout=5)
            with ctx.sessions.begin() as session:
                answer = request_cancel(session, gen_id, now=datetime.now(UTC))
            assert (answer.outcome, answer.status) == ("requested", GenerationStatus.SUBMITTING)
            assert submitting.result() is SubmitResult.SUBMITTED
        gen = drive(ctx, rec, gen_id)
        assert gen.status == GenerationStatus.CANCELLED
        assert upstream_calls(srv, gen)["cancel"] == 1
        assert len(srv.sim.submits()) == 1
