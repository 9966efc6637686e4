"""What a verified fal webhook does to its job, on PostgreSQL and on SQLite (``genqueue up``):
the statements differ (``RETURNING``, the run-time arithmetic), the outcome must not."""

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from models.tables import Generation
from models.upstream_webhook import (
    FalWebhook,
    WebhookOutcome,
    settle_from_webhook,
    settle_group,
)
from models.webhook_completion import TOO_LATE
from tests.support.generations import running_upstream

RESULT = {"images": [{"url": "https://v3.fal.media/files/x.png"}], "seed": 7}


def _upstream(sessions: sessionmaker[Session], submitted: datetime) -> tuple[uuid.UUID, str]:
    return running_upstream(
        sessions,
        model="fal-ai/flux-pro/kontext/text-to-image",
        submitted=submitted,
        unit_price=0.04,
        estimated_cost=0.04,
    )


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


def test_a_group_completes_each_job_with_its_own_payload_and_settles_duplicates_once(
    sessions: sessionmaker[Session],
) -> None:
    """One group: three successes (one of them twice), an error, an unknown request id, and a
    success for a job a poll already ended. Each job ends once, with its own payload, and
    every webhook for a known job is an event."""
    submitted = datetime.now(UTC) - timedelta(seconds=30)
    jobs = [_upstream(sessions, submitted) for _ in range(5)]
    (a, ra), (b, rb), (c, rc), (d, rd), (ended, rended) = jobs
    with sessions.begin() as session:
        session.execute(update(Generation).where(Generation.id == ended).values(status="failed"))
    payloads = {r: {"images": [], "seed": n} for n, r in enumerate([ra, rb, rc])}
    no_files = {"seed": 9}
    hooks = [
        _hook(ra, payload=payloads[ra]),
        _hook(rd, "ERROR", {"detail": "boom"}, error="Invalid status code: 500"),
        _hook(rb, payload=payloads[rb]),
        _hook(ra, payload=payloads[ra]),  # a duplicate in the same group
        _hook(str(uuid.uuid4())),
        _hook(rended),
        _hook(rc, payload=payloads[rc] | {"images": [{"url": "https://x/y.png"}]}),
        _hook(rb, payload=no_files),  # a second success for b, different: the first won
    ]
    now = submitted + timedelta(seconds=30)
    with sessions.begin() as session:
        outcomes = [s.outcome for s in settle_group(session, hooks, now=now)]
    done, ended_already = WebhookOutcome.COMPLETED, WebhookOutcome.ALREADY_ENDED
    assert outcomes == [
        done,
        WebhookOutcome.FAILED,
        done,
        ended_already,
        WebhookOutcome.UNKNOWN_REQUEST,
        ended_already,
        done,
        ended_already,
    ]
    ga, gb, gc, gd, gended = (_get(sessions, gen_id) for gen_id, _ in jobs)
    assert (ga.status, ga.result, ga.media_status) == ("completed", payloads[ra], None)
    assert (gb.status, gb.result) == ("completed", payloads[rb])
    assert (gc.status, gc.media_status) == ("completed", "pending")
    assert gc.result == payloads[rc] | {"images": [{"url": "https://x/y.png"}]}
    assert (gd.status, gended.status, gended.result) == ("failed", "failed", None)
    for gen in (ga, gb, gc):
        assert (gen.completed_at, gen.next_poll_at) == (now, None)
        assert abs((gen.run_seconds or 0.0) - 30) < 0.01
    count = {
        gen.id: ([e.kind for e in gen.events].count("completed"), _webhook_events(gen))
        for gen in (ga, gb, gc, gd, gended)
    }
    assert count == {a: (1, 2), b: (1, 2), c: (1, 1), d: (0, 1), ended: (0, 1)}
    assert [e.kind for e in gd.events].count("failed") == 1


def _webhook_events(gen: Generation) -> int:
    return [e.kind for e in gen.events].count("upstream_webhook")


def test_the_events_of_a_group_success_say_what_happened(sessions: sessionmaker[Session]) -> None:
    """The group's statement writes the same events on both backends: ``completed`` (noting a
    cancel that came too late) and ``upstream_webhook`` with the request id and outcome."""
    submitted = datetime.now(UTC) - timedelta(seconds=10)
    (plain, rp), (asked, ra) = (_upstream(sessions, submitted) for _ in range(2))
    with sessions.begin() as session:
        session.execute(
            update(Generation).where(Generation.id == asked).values(cancel_requested_at=submitted)
        )
    with sessions.begin() as session:
        settled = settle_group(session, [_hook(rp), _hook(ra)], now=datetime.now(UTC))
    assert [s.outcome for s in settled] == [WebhookOutcome.COMPLETED] * 2
    assert all(s.created_at is not None for s in settled)
    for gen_id, request_id, completed in (
        (plain, rp, {"via": "webhook"}),
        (asked, ra, {"via": "webhook", "cancel_requested": True, "note": TOO_LATE}),
    ):
        gen = _get(sessions, gen_id)
        assert [(e.kind, e.status, e.detail) for e in gen.events][-2:] == [
            ("completed", "completed", completed),
            (
                "upstream_webhook",
                None,
                {"request_id": request_id, "status": "OK", "outcome": "completed"},
            ),
        ]


def test_a_group_success_logs_one_line_per_job_with_its_request_id(
    sessions: sessionmaker[Session], caplog: pytest.LogCaptureFixture
) -> None:
    """Two events per job, one log line: ``completed``, carrying the request id the
    ``upstream_webhook`` event has (``request_id`` in the JSON logs)."""
    submitted = datetime.now(UTC) - timedelta(seconds=10)
    jobs = dict(_upstream(sessions, submitted) for _ in range(3))
    caplog.clear()  # the jobs' own "created" lines, when an earlier test set the level to INFO
    with caplog.at_level(logging.INFO, logger="genqueue.events"), sessions.begin() as session:
        settle_group(session, [_hook(r) for r in jobs.values()], now=datetime.now(UTC))
    lines = [r for r in caplog.records if r.name == "genqueue.events"]
    logged = {(r.generation_id, r.event, r.request_id) for r in lines}  # type: ignore[attr-defined]
    assert len(lines) == 3
    assert logged == {(str(g), "completed", r) for g, r in jobs.items()}
    assert all(r.levelno == logging.INFO for r in lines)
