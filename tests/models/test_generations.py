"""Inserting generations in groups, on PostgreSQL and on SQLite (what `genqueue up` runs)."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, sessionmaker

from models.generations import Inserted, NewGeneration, insert_generations
from models.keys import create_key
from models.tables import Generation, GenerationEvent
from tests.support.generations import create_generation

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def tenant(sessions: sessionmaker[Session]) -> uuid.UUID:
    with sessions.begin() as session:
        key, _ = create_key(session, name=f"t-{uuid.uuid4().hex[:8]}")
        return key.tenant_id


def _insert(sessions: sessionmaker[Session], new: list[NewGeneration]) -> list[Inserted]:
    with sessions.begin() as session:
        return insert_generations(
            session, new, now=NOW, deadline_seconds=600, submit_grace_seconds=10
        )


def test_a_group_is_inserted_with_one_created_event_each(
    sessions: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    awkward = {"prompt": "quotes \" ' {braces}, commas, \\ and 文字 🐈", "n": [1, 2.5, None]}
    new = [
        NewGeneration(
            tenant,
            MODEL,
            {"prompt": f"p{i}"} if i % 2 else {**awkward, "i": i},
            f'key {i}, with "quotes"' if i % 3 else None,
            f"hash-{i}",
            f"https://hooks.example/{i}?a=b,c" if i % 4 else None,
        )
        for i in range(25)
    ]
    out = _insert(sessions, new)
    assert [o.created for o in out] == [True] * 25
    assert len({o.id for o in out}) == 25
    with sessions() as session:
        rows = {
            g.id: g
            for g in session.scalars(select(Generation).where(Generation.tenant_id == tenant))
        }
        assert set(rows) == {o.id for o in out}
        for item, o in zip(new, out, strict=True):
            gen = rows[o.id]
            assert (gen.status, gen.input, gen.model) == ("pending", item.input, MODEL)
            assert (gen.idempotency_key, gen.request_hash, gen.webhook_url) == (
                item.idempotency_key,
                item.request_hash,
                item.webhook_url,
            )
            assert gen.created_at == gen.updated_at == NOW
            assert gen.deadline_at == NOW + timedelta(seconds=600)
            assert gen.next_poll_at == NOW + timedelta(seconds=10)
            assert gen.submit_attempts == 0
            assert gen.webhook_attempts == 0
        events = session.scalars(
            select(GenerationEvent).where(GenerationEvent.generation_id.in_(list(rows)))
        ).all()
        assert sorted(
            (e.generation_id, e.kind, e.status, e.at, e.queue_position, e.detail) for e in events
        ) == sorted((o.id, "created", "pending", NOW, None, None) for o in out)


def test_a_taken_idempotency_key_names_its_holder_instead_of_raising(
    sessions: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    [first] = _insert(sessions, [NewGeneration(tenant, MODEL, {"prompt": "a"}, "k-1", "h-a")])
    out = _insert(
        sessions,
        [
            NewGeneration(tenant, MODEL, {"prompt": "b"}, "k-1", "h-b"),
            NewGeneration(tenant, MODEL, {"prompt": "c"}, "k-2", "h-c"),
            NewGeneration(tenant, MODEL, {"prompt": "c again"}, "k-2", "h-c2"),
        ],
    )
    assert (out[0].created, out[0].id, out[0].existing_hash) == (False, first.id, "h-a")
    assert out[1].created
    # Two requests with one key in the same group: the first holds it, the second learns so.
    assert (out[2].created, out[2].id, out[2].existing_hash) == (False, out[1].id, "h-c")
    with sessions() as session:
        count = session.scalars(select(Generation.id).where(Generation.tenant_id == tenant)).all()
        assert len(count) == 2


def test_keys_belong_to_their_tenant(sessions: sessionmaker[Session], tenant: uuid.UUID) -> None:
    with sessions.begin() as session:
        other = create_key(session, name=f"o-{uuid.uuid4().hex[:8]}")[0].tenant_id
    out = _insert(
        sessions,
        [
            NewGeneration(tenant, MODEL, {"prompt": "x"}, "shared", "h"),
            NewGeneration(other, MODEL, {"prompt": "x"}, "shared", "h"),
        ],
    )
    assert all(o.created for o in out)
    assert out[0].id != out[1].id


def test_create_generation_is_a_group_of_one(
    sessions: sessionmaker[Session], tenant: uuid.UUID
) -> None:
    with sessions.begin() as session:
        gen = create_generation(
            session,
            tenant_id=tenant,
            model=MODEL,
            input={"prompt": "one"},
            now=NOW,
            deadline_seconds=60,
            submit_grace_seconds=1,
            idempotency_key="solo",
        )
        assert gen.status == "pending"
        assert gen.idempotency_key == "solo"
    with sessions.begin() as session, pytest.raises(ValueError, match="is held by"):
        create_generation(
            session,
            tenant_id=tenant,
            model=MODEL,
            input={"prompt": "two"},
            now=NOW,
            deadline_seconds=60,
            submit_grace_seconds=1,
            idempotency_key="solo",
        )


def test_on_postgresql_a_group_is_one_statement_of_one_text_whatever_its_size(
    private_sessions: sessionmaker[Session],
) -> None:
    """One round trip per group, and the same SQL for 1 or 200 rows, so it stays a prepared
    statement (benchmarks/RESULTS.md measures why)."""
    with private_sessions.begin() as session:
        tenant = create_key(session, name=f"one-{uuid.uuid4().hex[:8]}")[0].tenant_id
    engine = private_sessions.kw["bind"]
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(args[2])  # (conn, cursor, statement, parameters, context, executemany)

    event.listen(engine, "before_cursor_execute", note)
    try:
        for size in (1, 12, 200):
            out = _insert(
                private_sessions,
                [NewGeneration(tenant, MODEL, {"prompt": f"{size}/{i}"}) for i in range(size)],
            )
            assert all(o.created for o in out)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert len(seen) == 3
    assert len(set(seen)) == 1


def test_on_postgresql_a_value_too_long_for_its_column_is_refused_not_cut(
    private_sessions: sessionmaker[Session],
) -> None:
    with private_sessions.begin() as session:
        tenant = create_key(session, name=f"long-{uuid.uuid4().hex[:8]}")[0].tenant_id
    with pytest.raises(DataError):
        _insert(private_sessions, [NewGeneration(tenant, MODEL, {"prompt": "x"}, "k" * 256)])
    with private_sessions() as session:
        assert session.scalars(select(Generation).where(Generation.tenant_id == tenant)).all() == []
