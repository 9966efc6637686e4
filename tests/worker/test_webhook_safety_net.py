"""Jobs submitted with ``?fal_webhook=``: they say so, and polls become a sparse safety net that
still finds a job whose webhook never came (real PostgreSQL, the simulator over real HTTP)."""

import uuid
from dataclasses import replace
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

from sqlalchemy.orm import Session, sessionmaker

from models.status import GenerationStatus
from tests.worker.lifecycle_support import (
    FAST,
    drive,
    lifecycle_env,
    load,
    new_job,
    submit_one,
    upstream_calls,
)
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
