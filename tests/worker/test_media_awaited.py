"""Copies somebody waits for go first: a sync ``/run`` (``copy_awaited``) and a client webhook
wait up to ``media_wait`` after completion for their files' copy, so the listing and the lease
take their files before a backlog of files nobody waits for; past that wait they queue like
any other. A tick lists again while it copies, so a result that completes meanwhile need not
wait for the next tick. On PostgreSQL and SQLite (``genqueue up``)."""

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from models.destinations import AddressPolicy
from models.media import claim_due, expand_pending
from models.media_store import open_store
from models.tables import MediaFile
from models.types import utcnow
from tests.support.cdn import local_cdn
from tests.support.generations import completed_with_files
from worker.context import Limits, WorkerContext
from worker.lifecycle import media
from worker.upstream import UpstreamClient

WAIT = 30.0


@pytest.fixture
def now(sessions: sessionmaker[Session]) -> datetime:
    """The test's time; files other tests of the module left due are leased away first, so the
    lease sees this test's files alone."""
    at = utcnow()
    with sessions.begin() as session:
        expand_pending(session, at, limit=10_000, wait=WAIT)
    with sessions.begin() as session:
        claim_due(session, at, limit=10_000, lease_until=at + timedelta(days=1))
    return at


def completed(
    sessions: sessionmaker[Session],
    completed_at: datetime,
    files: int = 1,
    *,
    webhook: bool = False,
    run: bool = False,
    cdn: str = "http://cdn.test",
) -> uuid.UUID:
    """A generation completed at ``completed_at`` whose copy is pending: awaited by a client
    webhook, by a sync ``/run``, or by nobody."""
    return completed_with_files(
        sessions,
        files,
        completed_at=completed_at,
        cdn=cdn,
        webhook_url="https://hooks.example/done" if webhook else None,
        copy_awaited=run,
    )


def listed(sessions: sessionmaker[Session], at: datetime, limit: int = 100) -> int:
    with sessions.begin() as session:
        return expand_pending(session, at, limit=limit, wait=WAIT)


def leased(
    sessions: sessionmaker[Session], at: datetime, limit: int
) -> list[tuple[uuid.UUID, int]]:
    """(generation, position) of the files one lease takes."""
    with sessions.begin() as session:
        due = claim_due(session, at, limit=limit, lease_until=at + timedelta(seconds=60))
    return sorted((d.generation_id, d.position) for d in due)


def awaited_until(sessions: sessionmaker[Session], gen_id: uuid.UUID) -> list[datetime | None]:
    with sessions() as session:
        return list(
            session.scalars(
                select(MediaFile.awaited_until)
                .where(MediaFile.generation_id == gen_id)
                .order_by(MediaFile.position)
            )
        )


def test_the_lease_takes_the_files_somebody_waits_for_before_the_backlog(
    sessions: sessionmaker[Session], now: datetime
) -> None:
    backlog = completed(sessions, now - timedelta(hours=1), files=5)
    assert listed(sessions, now - timedelta(minutes=30)) == 1  # due for half an hour
    hooked = completed(sessions, now - timedelta(seconds=2), webhook=True)
    ran = completed(sessions, now - timedelta(seconds=1), files=2, run=True)
    plain = completed(sessions, now - timedelta(seconds=1))
    assert listed(sessions, now) == 3

    assert awaited_until(sessions, backlog) == [None] * 5
    assert awaited_until(sessions, plain) == [None]
    assert awaited_until(sessions, hooked) == [now - timedelta(seconds=2 - WAIT)]
    assert awaited_until(sessions, ran) == [now - timedelta(seconds=1 - WAIT)] * 2

    # Three awaited files and the rest of the limit from the front of the backlog.
    assert leased(sessions, now, 5) == sorted(
        [(hooked, 0), (ran, 0), (ran, 1), (backlog, 0), (backlog, 1)]
    )
    assert leased(sessions, now, 2) == sorted([(backlog, 2), (backlog, 3)])
    assert leased(sessions, now, 10) == sorted([(backlog, 4), (plain, 0)])


def test_a_lease_smaller_than_the_awaited_files_takes_the_longest_waiting_of_them(
    sessions: sessionmaker[Session], now: datetime
) -> None:
    completed(sessions, now - timedelta(hours=1), files=3)
    later = completed(sessions, now - timedelta(seconds=1), webhook=True)
    first = completed(sessions, now - timedelta(seconds=3), webhook=True)
    assert listed(sessions, now - timedelta(seconds=3), limit=1) == 1  # the backlog
    assert listed(sessions, now - timedelta(seconds=2)) == 2
    assert leased(sessions, now, 1) == [(first, 0)]
    assert leased(sessions, now, 1) == [(later, 0)]


def test_past_the_wait_an_awaited_file_queues_like_any_other(
    sessions: sessionmaker[Session], now: datetime
) -> None:
    backlog = completed(sessions, now - timedelta(hours=1), files=2)
    assert listed(sessions, now - timedelta(minutes=30)) == 1
    late = completed(sessions, now - timedelta(seconds=WAIT + 1), run=True)
    assert listed(sessions, now - timedelta(seconds=5)) == 1
    assert awaited_until(sessions, late) == [now - timedelta(seconds=1)]  # already over
    assert leased(sessions, now, 1) == [(backlog, 0)]
    # The same file within the wait goes first: only the clock differs.
    assert leased(sessions, now - timedelta(seconds=2), 1) == [(late, 0)]


def test_the_listing_takes_the_awaited_generations_first_then_the_longest_completed(
    sessions: sessionmaker[Session], now: datetime
) -> None:
    older = completed(sessions, now - timedelta(minutes=10))
    newer = completed(sessions, now - timedelta(minutes=5))
    ran = completed(sessions, now - timedelta(seconds=1), run=True)
    assert listed(sessions, now, limit=1) == 1
    assert awaited_until(sessions, ran) != []
    assert (awaited_until(sessions, older), awaited_until(sessions, newer)) == ([], [])
    assert listed(sessions, now, limit=1) == 1
    assert (awaited_until(sessions, older), awaited_until(sessions, newer)) == ([None], [])
    assert listed(sessions, now, limit=1) == 1
    assert awaited_until(sessions, newer) == [None]


@pytest.fixture
def slow_cdn() -> Iterator[str]:
    """A CDN on this machine that takes 20 ms over every file: a tick takes a while."""
    with local_cdn(delay=0.02) as cdn:
        yield cdn.url


def stored_at(sessions: sessionmaker[Session], ids: list[uuid.UUID]) -> list[datetime]:
    with sessions() as session:
        return list(
            session.scalars(
                select(MediaFile.stored_at).where(
                    MediaFile.generation_id.in_(ids), MediaFile.stored_at.is_not(None)
                )
            )
        )


def test_a_result_awaited_mid_tick_is_listed_and_copied_before_the_backlog(
    sessions: sessionmaker[Session],
    now: datetime,
    slow_cdn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(media, "LIST_INTERVAL", 0.05)
    backlog = [completed(sessions, now - timedelta(minutes=1), 4, cdn=slow_cdn) for _ in range(40)]
    ctx = WorkerContext(
        sessions=sessions,
        client=UpstreamClient(base_url="http://127.0.0.1:9", key=None),
        publish=lambda name, args: None,
        limits=Limits(media_concurrency=8, media_nice=0, media_wait=WAIT),
    )
    awaited: list[uuid.UUID] = []

    def complete_one_mid_tick() -> None:
        deadline = time.monotonic() + 30
        while len(stored_at(sessions, backlog)) < 16 and time.monotonic() < deadline:
            time.sleep(0.01)
        awaited.append(completed(sessions, utcnow(), 2, run=True, cdn=slow_cdn))

    completer = threading.Thread(target=complete_one_mid_tick)
    completer.start()
    http = media.media_http(10.0, 8, AddressPolicy(allow_private=True))  # the CDN: loopback
    try:
        counts = media.copy_due_media(ctx, open_store(f"file://{tmp_path}/media"), http)
    finally:
        http.close()
        completer.join(30)
    assert counts["stored"] == 4 * 40 + 2, counts  # one tick copied them all
    [ran] = awaited
    last_awaited = max(stored_at(sessions, [ran]))
    after = [at for at in stored_at(sessions, backlog) if at > last_awaited]
    # Without the listing within the tick, the awaited files would be listed once the backlog
    # was all leased, and copied among its last 2 rounds (16 files).
    assert len(after) >= 40, (len(after), last_awaited)
    with sessions() as session:
        left = session.scalar(
            select(func.count()).where(
                MediaFile.generation_id.in_([*backlog, ran]), MediaFile.status != "stored"
            )
        )
    assert left == 0
