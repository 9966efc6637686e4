"""The many-row compare-and-set: the same table and guards as ``transition``, one statement,
on PostgreSQL and on SQLite (``UPDATE … RETURNING`` on both)."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from models.keys import create_key
from models.state import transition_many
from models.status import GenerationStatus
from models.tables import GENERATIONS, Generation, GenerationEvent
from tests.support.generations import create_generation

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def test_only_rows_in_an_allowed_state_and_matching_the_guard_win(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        key, _ = create_key(session, name=f"many-{id(session)}-{datetime.now(UTC).timestamp()}")
        ids = [
            create_generation(
                session,
                tenant_id=key.tenant_id,
                model="fal-ai/flux-pro/kontext/text-to-image",
                input={"prompt": f"cat {n}"},
                now=NOW,
                deadline_seconds=60,
                submit_grace_seconds=5,
            ).id
            for n in range(4)
        ]
        pending, guarded_out, running, pending_too = ids
        session.execute(
            GENERATIONS.update()
            .where(Generation.id == running)
            .values(status=GenerationStatus.RUNNING.value)
        )
        session.execute(
            GENERATIONS.update()
            .where(Generation.id == guarded_out)
            .values(lease_token="someone else")
        )
        won = transition_many(
            session,
            [pending_too, guarded_out, running, pending],
            to=GenerationStatus.SUBMITTING,
            now=NOW,
            allowed_from={GenerationStatus.PENDING},
            where=[Generation.lease_token.is_(None)],
            values={"submit_attempts": Generation.submit_attempts + 1},
            details={pending: {"attempt": 1}},
        )
        assert won == [pending_too, pending]  # the order given
        rows = dict(session.execute(select(Generation.id, Generation.status)).all())
        assert [rows[i] for i in ids] == ["submitting", "pending", "running", "submitting"]
        events = session.execute(
            select(GenerationEvent.generation_id, GenerationEvent.detail).where(
                GenerationEvent.kind == "status", GenerationEvent.generation_id.in_(ids)
            )
        ).all()
        assert sorted(events, key=lambda e: str(e[0])) == sorted(
            [(pending_too, None), (pending, {"attempt": 1})], key=lambda e: str(e[0])
        )
        assert transition_many(session, [], to=GenerationStatus.SUBMITTING, now=NOW) == []
        with pytest.raises(ValueError, match="no legal transition"):
            transition_many(
                session,
                ids,
                to=GenerationStatus.PENDING,
                now=NOW,
                allowed_from={GenerationStatus.COMPLETED},
            )
