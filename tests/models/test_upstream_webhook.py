"""What a verified fal webhook does to its job, on PostgreSQL and on SQLite (``genqueue up``):
the statements differ (``RETURNING``, the run-time arithmetic), the outcome must not."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.keys import create_key
from models.tables import Generation
from models.upstream_webhook import FalWebhook, WebhookOutcome, settle_from_webhook
from tests.support.generations import create_generation

RESULT = {"images": [{"url": "https://v3.fal.media/files/x.png"}], "seed": 7}


def _upstream(sessions: sessionmaker[Session], submitted: datetime) -> tuple[uuid.UUID, str]:
    request_id = str(uuid.uuid4())
    with sessions.begin() as session:
        key, _ = create_key(session, name=f"m-{request_id[:8]}")
        gen = create_generation(
            session,
            tenant_id=key.tenant_id,
            model="fal-ai/flux-pro/kontext/text-to-image",
            input={"prompt": "p"},
            now=submitted,
            deadline_seconds=600,
            submit_grace_seconds=2,
        )
        session.execute(
            update(Generation)
            .where(Generation.id == gen.id)
            .values(
                status="running",
                upstream_request_id=request_id,
                submitted_at=submitted,
                unit_price=0.04,
                estimated_cost=0.04,
            )
        )
        return gen.id, request_id


def _hook(request_id: str, status: str = "OK", payload: Any = RESULT, **kw: Any) -> FalWebhook:
    return FalWebhook(request_id, status, payload, kw.get("error"), kw.get("payload_error"))


def _settle(sessions: sessionmaker[Session], hook: FalWebhook, now: datetime) -> WebhookOutcome:
    with sessions.begin() as session:
        return settle_from_webhook(session, hook, now=now).outcome


def _get(sessions: sessionmaker[Session], gen_id: uuid.UUID) -> Generation:
    with sessions() as session:
        gen = session.get(Generation, gen_id)
        assert gen is not None
        _ = gen.events
        return gen


def test_a_success_completes_once_with_the_run_time(sessions: sessionmaker[Session]) -> None:
    submitted = datetime.now(UTC) - timedelta(seconds=42)
    gen_id, request_id = _upstream(sessions, submitted)
    now = submitted + timedelta(seconds=42.5)
    assert _settle(sessions, _hook(request_id), now) is WebhookOutcome.COMPLETED
    assert _settle(sessions, _hook(request_id), now) is WebhookOutcome.ALREADY_ENDED
    gen = _get(sessions, gen_id)
    assert (gen.status, gen.result, gen.completed_at) == ("completed", RESULT, now)
    assert gen.run_seconds is not None
    assert abs(gen.run_seconds - 42.5) < 0.01
    assert gen.final_cost == 0.04  # a webhook reports no billable units: the estimate
    assert [(e.kind, e.status) for e in gen.events][-3:] == [
        ("completed", "completed"),
        ("upstream_webhook", None),
        ("upstream_webhook", None),
    ]


def test_an_error_fails_and_an_unknown_request_changes_nothing(
    sessions: sessionmaker[Session],
) -> None:
    gen_id, request_id = _upstream(sessions, datetime.now(UTC))
    body = {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    error = _hook(request_id, "ERROR", body, error="Invalid status code: 503")
    assert _settle(sessions, error, datetime.now(UTC)) is WebhookOutcome.FAILED
    gen = _get(sessions, gen_id)
    assert gen.error is not None
    assert (gen.status, gen.error["http_status"], gen.error["body"]) == ("failed", 503, body)
    assert gen.final_cost == 0.0
    unknown = _hook(str(uuid.uuid4()))
    assert _settle(sessions, unknown, datetime.now(UTC)) is WebhookOutcome.UNKNOWN_REQUEST
