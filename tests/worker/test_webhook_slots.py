"""Client webhook deliveries are bounded in total and per destination, and each attempt by a
short timeout: a receiver that never answers holds its share of slots, never all of them, and a
healthy receiver's delivery waits for no dead one. Real PostgreSQL, real HTTP."""

import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import wait_until
from models.destinations import AddressPolicy
from models.tables import Generation, GenerationEvent
from tests.support.receiver import black_hole, webhook_receiver
from tests.worker.webhook_support import ended_jobs, webhook_ctx
from worker.context import Limits, WorkerContext
from worker.lifecycle.webhook_claim import claim, destination_of, share
from worker.lifecycle.webhook_http import WebhookHttp
from worker.lifecycle.webhooks import deliver_webhooks, payload_builder


@pytest.fixture
def db(sessions: sessionmaker[Session]) -> sessionmaker[Session]:
    """This module's PostgreSQL database (emptied: deliveries other tests left due would share
    the slots), then a fresh SQLite one."""
    with sessions.begin() as session:
        session.execute(delete(GenerationEvent))
        session.execute(delete(Generation))
    return sessions


def _in_flight(ctx: WorkerContext, ids: list[uuid.UUID]) -> int:
    with ctx.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Generation)
                .where(Generation.id.in_(ids), Generation.webhook_lease_until > datetime.now(UTC))
            )
            or 0
        )


def test_destinations() -> None:
    assert destination_of("https://Hooks.Example.com/x?y=1") == "https://hooks.example.com:443"
    assert destination_of("http://10.0.0.1:8080/hook") == "http://10.0.0.1:8080"
    assert destination_of("http://[::1]/hook") == "http://::1:80"
    assert destination_of("http://[::1") == "invalid"


@pytest.mark.parametrize(
    ("waiting", "busy", "free", "per_destination", "expected"),
    [
        ({"a": 9, "b": 9}, {}, 5, 4, {"a": 3, "b": 2}),  # round-robin, oldest first
        ({"a": 9, "b": 1}, {}, 8, 4, {"a": 4, "b": 1}),  # never past the per-destination cap
        ({"a": 9, "b": 9}, {"a": 4}, 3, 4, {"b": 3}),  # a dead destination's slots are full
        ({"a": 2}, {"b": 1}, 0, 4, {}),  # nothing free
        ({}, {}, 5, 4, {}),
    ],
)
def test_share(
    waiting: dict[str, int],
    busy: dict[str, int],
    free: int,
    per_destination: int,
    expected: dict[str, int],
) -> None:
    assert share(waiting, busy, free, per_destination) == expected


def test_a_claim_takes_no_more_than_the_caps(db: sessionmaker[Session]) -> None:
    ctx = webhook_ctx(db, Limits(webhook_concurrency=5, webhook_per_destination=2))
    a = ended_jobs(ctx, "http://a.invalid/hook", 6)
    b = ended_jobs(ctx, "http://b.invalid:81/hook", 6)
    c = ended_jobs(ctx, "https://c.invalid/hook", 1)
    first = claim(ctx, payload_builder(ctx))
    assert len(first) == 5
    taken = {i.id for i in first}
    assert [len(taken & set(ids)) for ids in (a, b, c)] == [2, 2, 1]
    assert claim(ctx, payload_builder(ctx)) == []  # every slot is in flight
    assert first[0].payload["status"] == "OK"


def test_a_dead_receiver_holds_its_share_of_slots_and_no_more(
    db: sessionmaker[Session],
) -> None:
    limits = Limits(webhook_concurrency=3, webhook_per_destination=2, webhook_timeout=1.5)
    ctx = webhook_ctx(db, limits)
    with (
        WebhookHttp(
            AddressPolicy(allow_private=True), timeout=limits.webhook_timeout, max_connections=8
        ) as http,
        black_hole() as dead_url,
        webhook_receiver() as live,
        ThreadPoolExecutor(1) as pool,
    ):
        send = http.send
        dead = ended_jobs(ctx, dead_url, 6)
        started = time.monotonic()
        stuck = pool.submit(deliver_webhooks, ctx, send)
        wait_until(lambda: _in_flight(ctx, dead) == 2, 5, what="two deliveries to the dead host")
        healthy = ended_jobs(ctx, live.url, 1)  # a healthy receiver's delivery comes due meanwhile
        asked = time.monotonic()
        assert deliver_webhooks(ctx, send) == {"delivered": 1}
        assert time.monotonic() - asked < 1.0  # it waited for no dead delivery
        assert [c["body"]["request_id"] for c in live.received] == [str(healthy[0])]
        assert _in_flight(ctx, dead) == 2  # the other four dead ones did not take a slot
        assert stuck.result(timeout=10) == {"failed": 2}
        assert time.monotonic() - started < limits.webhook_timeout + 1.5  # bounded by the timeout
    with db() as session:
        errors = session.scalars(
            select(GenerationEvent.detail).where(
                GenerationEvent.generation_id.in_(dead), GenerationEvent.kind == "webhook_failed"
            )
        ).all()
    assert len(errors) == 2
    assert all((d or {})["error"].startswith("timeout") for d in errors)


def test_an_unparseable_url_is_blocked_not_a_crash_nor_retried(db: sessionmaker[Session]) -> None:
    ctx = webhook_ctx(db, Limits())
    [gen_id] = ended_jobs(ctx, "http://[::1", 1)
    with WebhookHttp(AddressPolicy(allow_private=True), timeout=1) as http:
        assert deliver_webhooks(ctx, http.send) == {"blocked": 1}
        assert deliver_webhooks(ctx, http.send) == {}
    with db() as session:
        gen = session.get(Generation, gen_id)
        assert gen is not None
        assert gen.webhook_attempts == 1
        assert gen.webhook_lease_until is None
        assert gen.webhook_stopped_at is not None
