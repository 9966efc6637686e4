"""The media tick's listing: a pending result's files become ``media_files`` rows once, and the
result is marked listed (``media_listed_at``) in the same transaction, so the listing reads only
the results not listed yet, never through a backlog still being copied. On PostgreSQL and
SQLite (``genqueue up``)."""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.media import expand_pending
from models.tables import Generation, MediaFile
from models.types import utcnow
from tests.support.generations import completed_with_files

WAIT = 30.0


def listed(sessions: sessionmaker[Session], at: datetime) -> int:
    with sessions.begin() as session:
        return expand_pending(session, at, limit=10_000, wait=WAIT)


def mark_and_files(sessions: sessionmaker[Session], gen_id: uuid.UUID) -> tuple[object, int]:
    with sessions() as session:
        mark = session.scalar(select(Generation.media_listed_at).where(Generation.id == gen_id))
        files = session.scalar(
            select(func.count()).select_from(MediaFile).where(MediaFile.generation_id == gen_id)
        )
    return mark, int(files or 0)


def test_a_result_is_listed_once_and_marked_in_the_same_transaction(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    listed(sessions, now)  # what other tests of the module left
    gen_id = completed_with_files(sessions, 3, completed_at=now - timedelta(seconds=5))
    assert mark_and_files(sessions, gen_id) == (None, 0)
    assert listed(sessions, now) == 1
    assert mark_and_files(sessions, gen_id) == (now, 3)
    assert listed(sessions, now + timedelta(seconds=1)) == 0


def test_the_listing_reads_the_mark_and_still_skips_results_listed_without_one(
    sessions: sessionmaker[Session],
) -> None:
    """A result marked listed is not read again, even with no file rows (so the mark, not a
    look through the files, is what keeps it out); one whose files a worker of the version
    before 0012 listed, with no mark, is not listed twice either (a rolling upgrade)."""
    now = utcnow()
    listed(sessions, now)
    marked = completed_with_files(sessions, 2, completed_at=now - timedelta(seconds=5))
    old_worker = completed_with_files(sessions, 2, completed_at=now - timedelta(seconds=4))
    assert listed(sessions, now) == 2
    with sessions.begin() as session:
        session.execute(delete(MediaFile).where(MediaFile.generation_id == marked))
        session.execute(
            update(Generation).where(Generation.id == old_worker).values(media_listed_at=None)
        )
    assert listed(sessions, now + timedelta(seconds=1)) == 0
    assert mark_and_files(sessions, marked) == (now, 0)
    assert mark_and_files(sessions, old_worker) == (None, 2)
