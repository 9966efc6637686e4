"""M2 waits for its warm-up jobs themselves, not for any terminal rows: in its copying phase a
seeded backlog of completed results is terminal from the start, and a wait that counted it
posted the measured wave before the warm-up jobs had given the model a run-time history."""

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, update
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.m2_media_lag import wait_warm_up
from models.keys import create_key
from models.tables import GENERATIONS

pytestmark = pytest.mark.integration


def _rows(sessions: sessionmaker[Session], count: int, status: str) -> list[str]:
    now = datetime.now(UTC)
    ids = [uuid.uuid4() for _ in range(count)]
    with sessions.begin() as session:
        key, _ = create_key(session, name=f"warm-{uuid.uuid4().hex[:6]}")
        row = {
            "tenant_id": key.tenant_id,
            "model": "fal-ai/flux-pro/kontext/text-to-image",
            "input": {"prompt": "m2-warm"},
            "status": status,
            "created_at": now,
            "updated_at": now,
            "submitted_at": now,
            "next_poll_at": now,
            "deadline_at": now,
            "submit_attempts": 1,
            "poll_count": 1,
            "error_count": 0,
            "webhook_attempts": 0,
        }
        session.execute(insert(GENERATIONS), [{**row, "id": i} for i in ids])
    return [str(i) for i in ids]


def _complete(sessions: sessionmaker[Session], ids: list[str]) -> None:
    with sessions.begin() as session:
        session.execute(
            update(GENERATIONS)
            .where(GENERATIONS.c.id.in_([uuid.UUID(i) for i in ids]))
            .values(status="completed", completed_at=datetime.now(UTC), run_seconds=20.0)
        )


def test_a_completed_backlog_does_not_end_the_warm_up(
    private_sessions: sessionmaker[Session],
) -> None:
    _rows(private_sessions, 5, "completed")  # M2's backlog: more rows than the warm-up
    warm = _rows(private_sessions, 2, "running")

    with pytest.raises(RuntimeError, match="2 of 2 warm-up jobs did not end"):
        wait_warm_up(private_sessions, warm, timeout=0.3)
    _complete(private_sessions, warm[:1])
    with pytest.raises(RuntimeError, match="1 of 2 warm-up jobs did not end"):
        wait_warm_up(private_sessions, warm, timeout=0.3)
    _complete(private_sessions, warm[1:])
    wait_warm_up(private_sessions, warm, timeout=0.3)  # returns: both ended
