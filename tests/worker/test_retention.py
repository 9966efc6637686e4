"""Retention: the reconciler deletes jobs that ended more than ``retention_days`` ago, with
their events, in batches; nothing else, and nothing at all when retention is 0. On PostgreSQL
and SQLite."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from models.deliveries import Attempt, attempts_of, log_attempt
from models.tables import Generation, GenerationEvent
from tests.support.generations import tenant_generation
from worker.context import Limits, WorkerContext
from worker.lifecycle import retention
from worker.lifecycle.reconcile import reconcile
from worker.upstream import UpstreamClient

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_other_jobs(sessions: sessionmaker[Session]) -> None:
    """The database is this module's own (PostgreSQL) or this test's (SQLite): what the tests
    before left in it would be swept too."""
    with sessions.begin() as session:
        session.execute(delete(GenerationEvent))
        session.execute(delete(Generation))


def _ctx(sessions: sessionmaker[Session], days: float) -> WorkerContext:
    return WorkerContext(
        sessions=sessions,
        client=UpstreamClient(base_url="http://127.0.0.1:9", key=None),
        publish=lambda name, args: None,
        limits=Limits(retention_days=days),
        clock=lambda: NOW,
    )


def _job(
    sessions: sessionmaker[Session], status: str, ended_days_ago: float | None, **values: Any
) -> uuid.UUID:
    ended = None if ended_days_ago is None else NOW - timedelta(days=ended_days_ago)
    with sessions.begin() as session:
        return tenant_generation(
            session,
            now=NOW - timedelta(days=30),
            input={"prompt": "old news"},
            status=status,
            completed_at=ended,
            **values,
        )


def _left(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> set[uuid.UUID]:
    with sessions() as session:
        return set(session.scalars(select(Generation.id).where(Generation.id.in_(ids))))


def _events_of(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> int:
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(GenerationEvent)
                .where(GenerationEvent.generation_id.in_(ids))
            )
            or 0
        )


def test_only_jobs_ended_before_the_retention_go_with_their_events(
    sessions: sessionmaker[Session],
) -> None:
    old = [_job(sessions, s, 10) for s in ("completed", "failed", "cancelled")]
    keep = [
        _job(sessions, "completed", 3),  # ended, but within the retention
        _job(sessions, "running", None),  # old, but not ended
        _job(sessions, "completed", 10, webhook_url="http://hook.example/x"),  # webhook due
    ]
    delivered = _job(
        sessions, "completed", 10, webhook_url="http://hook.example/y", webhook_delivered_at=NOW
    )
    abandoned = _job(
        sessions,
        "failed",
        10,
        webhook_url="http://hook.example/z",
        webhook_attempts=8,
        webhook_stopped_at=NOW,
    )
    blocked = _job(
        sessions, "completed", 10, webhook_url="http://hook.example/b", webhook_stopped_at=NOW
    )
    with sessions.begin() as session:  # its delivery log goes with it
        log_attempt(
            session,
            Attempt(delivered, NOW, 1, "http://hook.example/y", "delivered", 200, None, 5, "ok"),
        )
    gone = [*old, delivered, abandoned, blocked]
    assert _events_of(sessions, gone) == len(gone)  # each has its ``created`` event
    assert reconcile(_ctx(sessions, days=7))["swept"] == len(gone)
    assert _left(sessions, gone + keep) == set(keep)
    assert _events_of(sessions, gone) == 0
    with sessions() as session:
        assert list(attempts_of(session, delivered)) == []
    assert _events_of(sessions, keep) == len(keep)


def test_zero_keeps_everything(sessions: sessionmaker[Session]) -> None:
    ids = [_job(sessions, "completed", 3650) for _ in range(2)]
    assert retention.sweep_expired(_ctx(sessions, days=0)) == 0
    assert _left(sessions, ids) == set(ids)


def test_a_backlog_is_swept_in_batches(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retention, "SWEEP_BATCH", 2)
    monkeypatch.setattr(retention, "SWEEP_BATCHES", 2)
    ids = [_job(sessions, "completed", 8 + n) for n in range(7)]
    ctx = _ctx(sessions, days=7)
    assert retention.sweep_expired(ctx) == 4  # two batches of two, then the run stops
    assert _left(sessions, ids) == set(ids[:3])  # the oldest went first
    assert retention.sweep_expired(ctx) == 3
    assert _left(sessions, ids) == set()
