"""Queue positions are kept, each with its time, in one event row per run rather than a row
each; on PostgreSQL and on SQLite."""

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import insert, select
from sqlalchemy.orm import Session, sessionmaker

from models.history import RUN_LIMIT, queue_positions, record_queue_position
from models.keys import create_key
from models.state import record_event
from models.status import GenerationStatus
from models.tables import EVENTS, GenerationEvent
from models.vocabulary import EventKind
from tests.support.generations import create_generation

T0 = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
QUEUED = GenerationStatus.QUEUED


def _job(session: Session) -> uuid.UUID:
    key, _ = create_key(session, name=f"history-{uuid.uuid4().hex[:8]}")
    return create_generation(
        session,
        tenant_id=key.tenant_id,
        model="fal-ai/flux-pro/kontext/text-to-image",
        input={"prompt": "a queue"},
        now=T0,
        deadline_seconds=600,
        submit_grace_seconds=5,
    ).id


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _events(session: Session, gen_id: uuid.UUID) -> list[GenerationEvent]:
    return list(
        session.scalars(
            select(GenerationEvent)
            .where(GenerationEvent.generation_id == gen_id)
            .order_by(GenerationEvent.id)
        )
    )


def test_a_run_of_positions_is_one_row_and_every_position_keeps_its_time(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        gen_id = _job(session)
        record_event(session, gen_id, kind=EventKind.SUBMITTED, now=_at(1), queue_position=6)
        session.flush()
        for n, position in enumerate([5, 4, 3]):
            record_queue_position(session, gen_id, position=position, now=_at(2 + n), status=QUEUED)
            session.flush()
        record_event(session, gen_id, kind=EventKind.POLL_RETRY, now=_at(5))  # breaks the run
        session.flush()
        for n, position in enumerate([2, 0]):
            record_queue_position(session, gen_id, position=position, now=_at(6 + n), status=QUEUED)
            session.flush()
    with sessions() as session:
        events = _events(session, gen_id)
        assert [e.kind for e in events] == [
            "created",
            "submitted",
            "queue_position",
            "poll_retry",
            "queue_position",
        ]
        first_run, second_run = (e for e in events if e.kind == "queue_position")
        assert (first_run.at, first_run.queue_position) == (_at(4), 3)  # the run's latest
        assert first_run.detail == {
            "positions": [[_at(2).isoformat(), 5], [_at(3).isoformat(), 4], [_at(4).isoformat(), 3]]
        }
        assert second_run.queue_position == 0
        assert queue_positions(session, gen_id) == [
            (_at(1), 6),
            (_at(2), 5),
            (_at(3), 4),
            (_at(4), 3),
            (_at(6), 2),
            (_at(7), 0),
        ]


def test_a_full_run_starts_a_new_row(sessions: sessionmaker[Session]) -> None:
    with sessions.begin() as session:
        gen_id = _job(session)
        for n in range(RUN_LIMIT + 1):
            record_queue_position(session, gen_id, position=1000 - n, now=_at(n), status=QUEUED)
            session.flush()
    with sessions() as session:
        runs = [e for e in _events(session, gen_id) if e.kind == "queue_position"]
        assert [len((e.detail or {})["positions"]) for e in runs] == [RUN_LIMIT, 1]
        series = queue_positions(session, gen_id)
        assert [p for _, p in series] == [1000 - n for n in range(RUN_LIMIT + 1)]


def test_rows_written_one_per_position_before_still_read_and_extend(
    sessions: sessionmaker[Session],
) -> None:
    with sessions.begin() as session:
        gen_id = _job(session)
        session.execute(  # what the worker wrote before runs were kept: no ``positions``
            insert(EVENTS),
            [
                {"generation_id": gen_id, "at": _at(1), "kind": "queue_position",
                 "status": "queued", "queue_position": 9, "detail": None},
            ],
        )  # fmt: skip
        record_queue_position(session, gen_id, position=8, now=_at(2), status=QUEUED)
    with sessions() as session:
        [run] = [e for e in _events(session, gen_id) if e.kind == "queue_position"]
        assert queue_positions(session, gen_id) == [(_at(1), 9), (_at(2), 8)]
        assert run.queue_position == 8
