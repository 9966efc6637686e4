"""Jobs submitted with ``?fal_webhook=``: they say so, and polls become a sparse safety net that
still finds a job whose webhook never came; without a webhook, a model with no history yet is
polled around its catalogue run time (real PostgreSQL, the simulator over real HTTP)."""

import uuid
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy.orm import Session, sessionmaker

from models.status import GenerationStatus
from tests.worker.lifecycle_support import (
    FAST,
    MODEL,
    drive,
    lifecycle_env,
    load,
    new_job,
    submit_one,
    upstream_calls,
)
from worker.backoff import BackoffPolicy
from worker.context import Limits
from worker.lifecycle.submit_outcome import SubmitResult
from worker.upstream.protocol import submit_url

HOOK = "https://genqueue.example.com/webhooks/fal?tenant=a&x=1"
LIMITS = Limits(lease_seconds=5.0, submit_grace=0.5, max_poll_errors=6, webhook_url=HOOK)


def test_submit_carries_the_webhook_url_and_the_job_records_it(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions, limits=LIMITS) as (ctx, srv, _):
        ctx.policy = replace(FAST, webhook_interval=30.0)
        gen_id = new_job(ctx)
        assert submit_one(ctx, gen_id) is SubmitResult.SUBMITTED
        gen = load(ctx, gen_id)
        assert gen.expects_webhook is True
        assert gen.upstream_request_id is not None
        info = srv.sim.request_info(gen.upstream_request_id)
        assert info is not None
        assert info["webhook_url"] == HOOK  # URL-encoded on the way, whole on arrival
        [event] = [e for e in gen.events if e.kind == "submitted"]
        assert event.detail == {
            "request_id": gen.upstream_request_id,
            "attempt": 1,
            "webhook": True,
        }
        assert gen.submitted_at is not None
        assert gen.next_poll_at is not None
        assert gen.next_poll_at - gen.submitted_at >= timedelta(seconds=30)


def test_the_webhook_url_is_url_encoded_in_the_submit() -> None:
    url = submit_url("https://queue.fal.run", "fal-ai/flux-pro/kontext", webhook_url=HOOK)
    assert urlsplit(url).query.startswith("fal_webhook=https%3A%2F%2Fgenqueue.example.com")
    assert parse_qs(urlsplit(url).query) == {"fal_webhook": [HOOK]}


def test_without_the_setting_no_webhook_is_asked_for(
    private_sessions: sessionmaker[Session],
) -> None:
    with lifecycle_env(private_sessions) as (ctx, srv, _):
        gen_id = new_job(ctx)
        assert submit_one(ctx, gen_id) is SubmitResult.SUBMITTED
        gen = load(ctx, gen_id)
        assert gen.expects_webhook is False
        assert gen.upstream_request_id is not None
        info = srv.sim.request_info(gen.upstream_request_id)
        assert info is not None
        assert info["webhook_url"] is None


def test_a_lost_webhook_is_found_by_the_safety_net_with_one_status_call(
    private_sessions: sessionmaker[Session],
) -> None:
    # the webhook goes to a port nobody listens on: lost, as far as genqueue can tell
    limits = replace(LIMITS, webhook_url="http://127.0.0.1:9/webhooks/fal")
    with lifecycle_env(private_sessions, limits=limits, run_time=0.2) as (ctx, srv, recorder):
        ctx.policy = replace(FAST, webhook_interval=1.0)
        gen_id: uuid.UUID = new_job(ctx)
        gen = drive(ctx, recorder, gen_id, timeout=20)
        assert gen.status == GenerationStatus.COMPLETED
        assert gen.result is not None
        assert gen.submitted_at is not None
        assert gen.completed_at is not None
        assert gen.completed_at - gen.submitted_at >= timedelta(seconds=1.0)  # not before
        assert upstream_calls(srv, gen) == {"submit": 1, "status": 1, "result": 1, "cancel": 0}


def test_a_cold_models_job_is_polled_around_its_catalogue_run_time(
    private_sessions: sessionmaker[Session],
) -> None:
    """No history and no webhook: the first status call waits for 0.6 × the catalogue's run
    time, the next come every ``prior_dense_delay`` across its window, so a 4 s job costs a
    handful of calls and is seen within one gap of its end (not after a geometric 4 s one)."""
    run_time = 4.0
    with lifecycle_env(private_sessions, run_time=run_time) as (ctx, srv, recorder):
        ctx.policy = BackoffPolicy(min_delay=0.5, max_delay=10.0, jitter=0.0, prior_dense_delay=0.5)
        ctx.expected_run_seconds = lambda model: run_time if model == MODEL else None
        gen_id = new_job(ctx)
        assert submit_one(ctx, gen_id) is SubmitResult.SUBMITTED
        submitted = load(ctx, gen_id)
        assert submitted.submitted_at is not None
        assert submitted.next_poll_at is not None
        first = (submitted.next_poll_at - submitted.submitted_at).total_seconds()
        assert first == pytest.approx(0.6 * run_time, abs=0.01)  # not min_delay (0.5 s)
        gen = drive(ctx, recorder, gen_id, timeout=20)
        assert gen.status == GenerationStatus.COMPLETED
        assert gen.completed_at is not None
        assert gen.submitted_at is not None
        lag = (gen.completed_at - gen.submitted_at).total_seconds() - run_time
        assert lag <= 1.0  # geometric 0.5, 1, 2, 4 s gaps would see it at 7.5 s: 3.5 s late
        calls = upstream_calls(srv, gen)
        assert 3 <= calls["status"] <= 6  # at 2.4, 2.9, 3.4, 3.9, 4.4 s
        assert calls["result"] == 1
