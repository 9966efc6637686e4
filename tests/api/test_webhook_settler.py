"""The webhook writer (``api/fal/settler.py``) on real PostgreSQL: webhooks waiting together are
one transaction, a webhook the database refuses fails only itself, and an unreachable database
fails its whole group without answering any of them as recorded."""

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, event
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from api.fal.settler import WebhookSettler
from models.db import make_session_factory
from models.tables import Generation
from models.upstream_webhook import FalWebhook, WebhookOutcome
from tests.support.generations import running_upstream

WAIT = 30.0


def _upstream(sessions: sessionmaker[Session]) -> tuple[uuid.UUID, str]:
    submitted = datetime.now(UTC) - timedelta(seconds=5)
    return running_upstream(sessions, model="fal-ai/flux/dev", submitted=submitted)


def _ok(request_id: str, payload: object | None = None) -> FalWebhook:
    return FalWebhook(request_id, "OK", payload or {"images": [], "id": request_id}, None, None)


def _status(sessions: sessionmaker[Session], gen_id: uuid.UUID) -> tuple[str, object]:
    with sessions() as session:
        gen = session.get(Generation, gen_id)
        assert gen is not None
        return gen.status, gen.result


def _gated(
    sessions: sessionmaker[Session],
) -> tuple[WebhookSettler, threading.Event, threading.Event]:
    """A writer whose first group waits, once taken (``entered``), until ``gate`` is set."""
    entered, gate = threading.Event(), threading.Event()

    def gated() -> sessionmaker[Session]:
        entered.set()
        gate.wait(WAIT)
        return sessions

    return WebhookSettler(sessions=gated, clock=lambda: datetime.now(UTC)), entered, gate


@pytest.fixture
def counted(
    pg_sessions: sessionmaker[Session],
) -> Iterator[tuple[sessionmaker[Session], list[int]]]:
    """The test database's sessions, counting the commits made through them."""
    engine = pg_sessions.kw["bind"]
    commits = [0]

    def on_commit(_: object) -> None:
        commits[0] += 1

    event.listen(engine, "commit", on_commit)
    yield pg_sessions, commits
    event.remove(engine, "commit", on_commit)


def test_webhooks_waiting_together_are_one_transaction(
    counted: tuple[sessionmaker[Session], list[int]],
) -> None:
    sessions, commits = counted
    jobs = [_upstream(sessions) for _ in range(30)]
    settler, entered, gate = _gated(sessions)
    try:
        commits[0] = 0
        futures = [settler.submit(_ok(jobs[0][1]))]
        assert entered.wait(WAIT)  # the writer holds its first group: the rest queue behind it
        futures += [settler.submit(_ok(request_id)) for _, request_id in jobs[1:]]
        futures += [settler.submit(_ok(request_id)) for _, request_id in jobs[:5]]  # copies
        gate.set()
        outcomes = [f.result(WAIT).settled.outcome for f in futures]
    finally:
        settler.close()
    assert outcomes == [WebhookOutcome.COMPLETED] * 30 + [WebhookOutcome.ALREADY_ENDED] * 5
    assert commits[0] == 2  # the first webhook alone, then the 34 queued behind it (was 35)
    for gen_id, request_id in jobs:
        assert _status(sessions, gen_id) == ("completed", {"images": [], "id": request_id})


def test_a_webhook_the_database_refuses_fails_only_itself(
    pg_sessions: sessionmaker[Session],
) -> None:
    jobs = [_upstream(pg_sessions) for _ in range(3)]
    settler, entered, gate = _gated(pg_sessions)
    (a, ra), (b, rb), (c, rc) = jobs
    try:
        first = settler.submit(_ok(ra))
        assert entered.wait(WAIT)
        # PostgreSQL's jsonb cannot hold a NUL character: this group's transaction fails.
        bad = settler.submit(_ok(rb, {"images": [], "text": "nul \u0000 here"}))
        good = settler.submit(_ok(rc))
        gate.set()
        assert first.result(WAIT).settled.outcome is WebhookOutcome.COMPLETED
        with pytest.raises(DataError):
            bad.result(WAIT)
        assert good.result(WAIT).settled.outcome is WebhookOutcome.COMPLETED
    finally:
        settler.close()
    assert _status(pg_sessions, a)[0] == "completed"
    assert _status(pg_sessions, b) == ("running", None)  # not recorded: fal must try again
    assert _status(pg_sessions, c)[0] == "completed"


def test_an_unreachable_database_fails_the_whole_group() -> None:
    engine = create_engine(
        "postgresql+psycopg://genqueue@127.0.0.1:1/none", connect_args={"connect_timeout": 1}
    )
    settler = WebhookSettler(
        sessions=lambda: make_session_factory(engine), clock=lambda: datetime.now(UTC)
    )
    try:
        futures = [settler.submit(_ok(str(uuid.uuid4()))) for _ in range(3)]
        for future in futures:
            with pytest.raises(OperationalError):
                future.result(WAIT)
    finally:
        settler.close()
        engine.dispose()
