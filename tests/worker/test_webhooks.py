"""Client webhooks: delivered once in fal's shape, retried with backoff, never with the key."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.destinations import AddressPolicy
from models.status import GenerationStatus
from models.tables import Generation
from models.webhook_secrets import current_secret
from simulator import FaultRule
from tests.support.receiver import webhook_receiver
from tests.worker.lifecycle_support import BOX, KEY, drive, kinds, lifecycle_env, load, new_job
from worker.context import WorkerContext
from worker.lifecycle.webhook_http import WebhookHttp
from worker.lifecycle.webhook_retry import SVIX_SCHEDULE
from worker.lifecycle.webhook_sign import message_id
from worker.lifecycle.webhooks import deliver_webhooks

PRIVATE_OK = AddressPolicy(allow_private=True)
"""The receivers in these tests listen on 127.0.0.1."""


def _with_webhook(ctx: WorkerContext, gen_id: uuid.UUID, url: str) -> None:
    with ctx.sessions.begin() as session:
        session.execute(update(Generation).where(Generation.id == gen_id).values(webhook_url=url))


def test_completed_job_is_delivered_once(private_sessions: sessionmaker[Session]) -> None:
    with (
        lifecycle_env(private_sessions) as (ctx, _, rec),
        webhook_receiver() as hook,
        WebhookHttp(PRIVATE_OK, timeout=5) as http,
    ):
        send = http.send
        gen_id = new_job(ctx)
        _with_webhook(ctx, gen_id, hook.url)
        assert deliver_webhooks(ctx, send) == {}  # not ended yet
        gen = drive(ctx, rec, gen_id)
        assert deliver_webhooks(ctx, send) == {"delivered": 1}
        assert deliver_webhooks(ctx, send) == {}
        [call] = hook.received
        with ctx.sessions.begin() as session:
            secret = current_secret(session, BOX, gen.tenant_id)
        [body] = hook.verified(secret)
        assert body == call["body"]
        assert call["headers"]["webhook-id"] == message_id(gen_id)
        assert (body["request_id"], body["status"], body["error"]) == (str(gen_id), "OK", None)
        assert body["payload"] == gen.result
        assert body["generation"]["status"] == "completed"
        assert KEY not in str(call)
        gen = load(ctx, gen_id)
        assert gen.webhook_delivered_at is not None
        assert gen.webhook_attempts == 1
        assert kinds(gen)[-1] == "webhook_delivered"


def test_failed_job_reports_the_error_and_retries_are_spaced(
    private_sessions: sessionmaker[Session],
) -> None:
    with (
        lifecycle_env(private_sessions) as (ctx, srv, rec),
        webhook_receiver() as hook,
        WebhookHttp(PRIVATE_OK, timeout=5) as http,
    ):
        send = http.send
        srv.sim.add_fault(
            FaultRule(
                op="any",
                kind="model_error",
                status_code=503,
                error_type="runner_disconnected",
                match_prompt="doomed",
            )
        )
        gen_id = new_job(ctx, prompt="doomed")
        _with_webhook(ctx, gen_id, hook.url)
        drive(ctx, rec, gen_id)
        hook.answers = [500]
        before = datetime.now(UTC)
        assert deliver_webhooks(ctx, send) == {"failed": 1}
        gen = load(ctx, gen_id)
        assert gen.webhook_attempts == 1
        assert gen.webhook_delivered_at is None
        assert gen.webhook_next_at is not None
        assert gen.webhook_next_at >= before + timedelta(seconds=SVIX_SCHEDULE[0])
        assert deliver_webhooks(ctx, send) == {}  # not due yet
        with ctx.sessions.begin() as session:
            session.execute(
                update(Generation)
                .where(Generation.id == gen_id)
                .values(webhook_next_at=datetime.now(UTC))
            )
        assert deliver_webhooks(ctx, send) == {"delivered": 1}
        first, second = (c["body"] for c in hook.received)
        assert first == second
        ids = {c["headers"]["webhook-id"] for c in hook.received}
        assert ids == {message_id(gen_id)}  # the same message, for the receiver to dedupe
        assert (second["status"], second["generation"]["error_type"]) == (
            "ERROR",
            "runner_disconnected",
        )
        assert [k for k in kinds(load(ctx, gen_id)) if k.startswith("webhook")] == [
            "webhook_failed",
            "webhook_delivered",
        ]


def test_an_unreachable_receiver_is_abandoned_after_the_schedule(
    private_sessions: sessionmaker[Session],
) -> None:
    with (
        lifecycle_env(private_sessions) as (ctx, _, rec),
        WebhookHttp(PRIVATE_OK, timeout=2) as http,
    ):
        send = http.send
        gen_id = new_job(ctx)
        _with_webhook(ctx, gen_id, "http://127.0.0.1:9/hook")
        drive(ctx, rec, gen_id)
        for _ in range(len(SVIX_SCHEDULE) + 1):
            with ctx.sessions.begin() as session:
                session.execute(
                    update(Generation).where(Generation.id == gen_id).values(webhook_next_at=None)
                )
            deliver_webhooks(ctx, send)
        assert deliver_webhooks(ctx, send) == {}
        gen = load(ctx, gen_id)
        assert gen.webhook_attempts == len(SVIX_SCHEDULE) + 1 == 8
        assert gen.webhook_stopped_at is not None
        assert gen.status == GenerationStatus.COMPLETED
        assert kinds(gen)[-1] == "webhook_abandoned"
