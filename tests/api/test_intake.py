"""The intake on its own, on the session's PostgreSQL: requests that arrive while a group is
being written are committed and published together, failures answer every request of a group,
one bad row does not sink its neighbours, and closing answers what was queued."""

import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api import intake as intake_module
from api.intake import Accepted, Intake, IntakeLimits
from api.state import writer_session_factory
from models import tasknames
from models.batch import write_together
from models.db import make_engine, make_session_factory
from models.generations import NewGeneration
from models.keys import create_key
from models.tables import Generation, GenerationEvent
from tests.api.support import MODEL, RecordingPublisher

LIMITS = IntakeLimits(deadline_seconds=600, submit_grace_seconds=10)


class GatedPublisher(RecordingPublisher):
    """Holds its first publish until released, so the next requests gather behind it."""

    def __init__(self) -> None:
        super().__init__()
        self.first_publish = threading.Event()
        self.release = threading.Event()

    def publish(self, task_name: str, args: Sequence[Any]) -> None:
        if not self.first_publish.is_set():
            self.first_publish.set()
            assert self.release.wait(10)
        super().publish(task_name, args)


@pytest.fixture
def tenant(pg_sessions: sessionmaker[Session]) -> uuid.UUID:
    with pg_sessions.begin() as session:
        return create_key(session, name=f"in-{uuid.uuid4().hex[:8]}")[0].tenant_id


def _intake(sessions: sessionmaker[Session], publisher: RecordingPublisher) -> Intake:
    writer = writer_session_factory(sessions.kw["bind"])  # what the app's intake writes with
    return Intake(
        sessions=lambda: writer,
        publisher=publisher,
        limits=LIMITS,
        clock=lambda: datetime.now(UTC),
    )


@pytest.fixture
def gated(pg_sessions: sessionmaker[Session]) -> Iterator[tuple[Intake, GatedPublisher]]:
    publisher = GatedPublisher()
    intake = _intake(pg_sessions, publisher)
    yield intake, publisher
    publisher.release.set()
    intake.close()


def _results(futures: list["Future[Accepted]"]) -> list[Accepted]:
    return [f.result(timeout=10) for f in futures]


def test_requests_that_arrive_during_a_write_are_committed_and_published_together(
    gated: tuple[Intake, GatedPublisher], tenant: uuid.UUID, pg_sessions: sessionmaker[Session]
) -> None:
    intake, publisher = gated
    first = intake.submit(NewGeneration(tenant, MODEL, {"prompt": "first"}))
    assert publisher.first_publish.wait(10)  # the first group is committed, its publish held
    rest = [
        intake.submit(NewGeneration(tenant, MODEL, {"prompt": f"p{i}"}), position=i % 2 == 0)
        for i in range(30)
    ]
    assert not any(f.done() for f in [first, *rest])  # nobody is answered before its publish
    publisher.release.set()
    accepted = _results([first, *rest])
    ids = [str(a.inserted.id) for a in accepted]
    # One message per worker submit wave (16 ids by default): a task never runs long.
    assert publisher.published == [
        (tasknames.SUBMIT_MANY, [ids[:1]]),
        (tasknames.SUBMIT_MANY, [ids[1:17]]),
        (tasknames.SUBMIT_MANY, [ids[17:]]),
    ]
    # A request that asks for its place in line counts those created before it; the others
    # are not counted for (fal's answer has a queue_position, the native one does not).
    positions = [a.queue_position for a in accepted[1:]]
    assert positions[1::2] == [None] * 15
    start = positions[0]
    assert start is not None
    assert positions[0::2] == list(range(start, start + 30, 2))
    assert accepted[0].queue_position is None
    with pg_sessions() as session:
        stored = session.scalars(
            select(Generation.id).where(Generation.id.in_([a.inserted.id for a in accepted]))
        ).all()
        created = session.scalars(
            select(GenerationEvent.generation_id).where(
                GenerationEvent.generation_id.in_(stored), GenerationEvent.kind == "created"
            )
        ).all()
    assert len(stored) == 31
    assert sorted(created) == sorted(stored)


def test_positions_in_one_group_count_each_tenants_own_requests(
    gated: tuple[Intake, GatedPublisher], pg_sessions: sessionmaker[Session]
) -> None:
    """Two tenants' requests written in one group: each is told its place among its own
    tenant's waiting requests, never the other's."""
    with pg_sessions.begin() as session:
        a, b = (create_key(session, name=f"in-{uuid.uuid4().hex[:8]}")[0].tenant_id for _ in "ab")
    intake, publisher = gated
    first = intake.submit(NewGeneration(a, MODEL, {"prompt": "first of a"}))
    assert publisher.first_publish.wait(10)  # the next requests gather into one group
    tenants = [a, b, b, a, b, a, a, b]
    futures = [
        intake.submit(NewGeneration(t, MODEL, {"prompt": f"p{i}"}), position=True)
        for i, t in enumerate(tenants)
    ]
    publisher.release.set()
    _results([first])
    positions = [r.queue_position for r in _results(futures)]
    assert [p for t, p in zip(tenants, positions, strict=True) if t == a] == [1, 2, 3, 4]
    assert [p for t, p in zip(tenants, positions, strict=True) if t == b] == [0, 1, 2, 3]


def test_a_database_outage_fails_every_request_of_the_group_and_publishes_nothing(
    tenant: uuid.UUID,
) -> None:
    engine = make_engine(
        "postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 1}
    )
    publisher = RecordingPublisher()
    intake = _intake(make_session_factory(engine), publisher)
    try:
        futures = [intake.submit(NewGeneration(tenant, MODEL, {"prompt": "x"})) for _ in range(5)]
        for future in futures:
            with pytest.raises(OperationalError):
                future.result(timeout=30)
        assert publisher.published == []
    finally:
        intake.close()
        engine.dispose()


def test_one_unstorable_row_does_not_sink_its_group(
    gated: tuple[Intake, GatedPublisher], tenant: uuid.UUID, pg_sessions: sessionmaker[Session]
) -> None:
    intake, publisher = gated
    intake.submit(NewGeneration(tenant, MODEL, {"prompt": "opens the gate"}))
    assert publisher.first_publish.wait(10)
    good = [intake.submit(NewGeneration(tenant, MODEL, {"prompt": f"ok {i}"})) for i in range(3)]
    # The API refuses NUL before this point; here it stands for any row the database rejects.
    bad = intake.submit(NewGeneration(tenant, MODEL, {"prompt": "nul \x00 inside"}))
    publisher.release.set()
    accepted = _results(good)
    with pytest.raises(Exception, match=r"(?i)unicode|u0000|null"):
        bad.result(timeout=10)
    published = [i for _, args in publisher.published[1:] for i in args[0]]
    assert sorted(published) == sorted(str(a.inserted.id) for a in accepted)
    with pg_sessions() as session:
        prompts = session.scalars(
            select(Generation.input["prompt"].as_string()).where(Generation.tenant_id == tenant)
        ).all()
    assert sorted(prompts) == ["ok 0", "ok 1", "ok 2", "opens the gate"]


def test_close_answers_what_was_queued_and_the_next_use_starts_again(
    gated: tuple[Intake, GatedPublisher], tenant: uuid.UUID
) -> None:
    intake, publisher = gated
    futures = [intake.submit(NewGeneration(tenant, MODEL, {"prompt": f"c{i}"})) for i in range(5)]
    assert publisher.first_publish.wait(10)
    closing = threading.Thread(target=intake.close)
    closing.start()
    publisher.release.set()
    closing.join(10)
    assert not closing.is_alive()
    assert all(a.inserted.created for a in _results(futures))
    assert intake.submit(NewGeneration(tenant, MODEL, {"prompt": "later"})).result(10)


def test_a_group_that_blows_up_the_writer_is_answered_and_the_writer_goes_on(
    pg_sessions: sessionmaker[Session], tenant: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    intake = _intake(pg_sessions, RecordingPublisher())

    def dies(*_: Any, **__: Any) -> None:
        raise SystemExit("the writer thread is going away")

    monkeypatch.setattr(intake_module, "write_together", dies)
    try:
        doomed = intake.submit(NewGeneration(tenant, MODEL, {"prompt": "doomed"}))
        with pytest.raises(SystemExit):
            doomed.result(timeout=10)
        monkeypatch.setattr(intake_module, "write_together", write_together)
        later = intake.submit(NewGeneration(tenant, MODEL, {"prompt": "later"}))
        assert later.result(timeout=10).inserted.created
    finally:
        intake.close()


def _dbapi(session: Session) -> Any:
    """The driver's own connection under the session's."""
    connection = session.connection().connection.dbapi_connection
    assert connection is not None
    return connection


def test_the_writer_runs_in_autocommit_on_postgresql_only(
    pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """A group is one statement on PostgreSQL, so no BEGIN/COMMIT round trips; SQLite's two
    statements keep their transaction."""
    with writer_session_factory(pg_sessions.kw["bind"])() as session:
        assert _dbapi(session).autocommit is True
    with pg_sessions() as session:
        assert _dbapi(session).autocommit is False
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        with writer_session_factory(engine)() as session:
            assert session.connection().get_execution_options().get("isolation_level") is None
    finally:
        engine.dispose()
