"""Copy outcomes written in groups, on PostgreSQL (one ``UPDATE … FROM unnest(…)``) and SQLite
(a row at a time): each under its own lease, the lost ones left alone, events only for the
winners, and the generation settled once none of its files is pending. The writer thread
gathers outcomes from many copy threads into such groups and says how each ended."""

import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models.media import DueFile, MediaStatus, Outcome, claim_due, expand_pending
from models.media_outcomes import record_outcomes
from models.media_store import open_store
from models.tables import Generation as Gen
from models.tables import GenerationEvent, MediaFile
from models.types import utcnow
from tests.support.generations import completed_with_files
from worker.context import Limits, WorkerContext
from worker.lifecycle.media import _attempt
from worker.lifecycle.media_writer import OutcomeWriter
from worker.upstream import UpstreamClient


def completed_files(sessions: sessionmaker[Session], count: int) -> uuid.UUID:
    return completed_with_files(sessions, count, completed_at=utcnow())


def lease_all(sessions: sessionmaker[Session], gen_id: uuid.UUID, count: int) -> list[DueFile]:
    now = utcnow()
    with sessions.begin() as session:
        expand_pending(session, now, limit=1000, wait=30.0)
    with sessions.begin() as session:
        due = claim_due(session, now, limit=1000, lease_until=now + timedelta(seconds=60))
    mine = sorted((d for d in due if d.generation_id == gen_id), key=lambda d: d.position)
    assert len(mine) == count
    return mine


def stored(position: int) -> Outcome:
    sha = f"{position:064x}"
    return Outcome(MediaStatus.STORED, sha256=sha, size=10 + position, content_type="image/png")


def test_one_group_writes_each_outcome_under_its_own_lease(
    sessions: sessionmaker[Session],
) -> None:
    gen_id = completed_files(sessions, 4)
    due = lease_all(sessions, gen_id, 4)
    now = utcnow()
    with sessions.begin() as session:  # another tick took file 3 once its lease ran out
        session.execute(
            update(MediaFile)
            .where(MediaFile.id == due[3].id)
            .values(lease_until=now + timedelta(seconds=999))
        )
    retry_at = now + timedelta(seconds=30)
    group = [
        (due[0], stored(0)),
        (due[1], Outcome(MediaStatus.PENDING, reason="HTTP 503", retry_at=retry_at)),
        (due[2], Outcome(MediaStatus.FAILED, reason="HTTP 404")),
        (due[3], stored(3)),
    ]
    with sessions.begin() as session:
        assert record_outcomes(session, group, now) == [True, True, True, False]
    with sessions() as session:
        rows = session.scalars(
            select(MediaFile).where(MediaFile.generation_id == gen_id).order_by(MediaFile.position)
        ).all()
        facts = [(r.status, r.attempts, r.sha256, r.size, r.error) for r in rows]
        assert facts == [
            ("stored", 1, f"{0:064x}", 10, None),
            ("pending", 1, None, None, "HTTP 503"),
            ("failed", 1, None, None, "HTTP 404"),
            ("pending", 0, None, None, None),  # the lost one is the other tick's to write
        ]
        assert rows[1].next_at == retry_at
        assert rows[0].lease_until is None
        assert rows[3].lease_until is not None
        events = session.scalars(
            select(GenerationEvent.kind).where(
                GenerationEvent.generation_id == gen_id, GenerationEvent.kind.like("media_%")
            )
        ).all()
        assert sorted(events) == ["media_failed", "media_retry", "media_stored"]
        assert session.get_one(Gen, gen_id).media_status == "pending"  # two still pending


def test_the_generation_settles_failed_when_its_last_file_is_written(
    sessions: sessionmaker[Session],
) -> None:
    gen_id = completed_files(sessions, 2)
    first, second = lease_all(sessions, gen_id, 2)
    with sessions.begin() as session:
        record_outcomes(session, [(first, stored(0))], utcnow())
    with sessions() as session:
        assert session.get_one(Gen, gen_id).media_status == "pending"
    with sessions.begin() as session:
        outcome = Outcome(MediaStatus.FAILED, reason="over the size limit of 1 bytes")
        record_outcomes(session, [(second, outcome)], utcnow())
    with sessions() as session:
        assert session.get_one(Gen, gen_id).media_status == "failed"


def context(sessions: sessionmaker[Session]) -> WorkerContext:
    return WorkerContext(
        sessions=sessions,
        client=UpstreamClient(base_url="http://127.0.0.1:9", key=None),
        publish=lambda name, args: None,
        limits=Limits(media_timeout=30.0),
    )


def test_the_writer_gathers_outcomes_and_counts_how_each_ended(
    sessions: sessionmaker[Session],
) -> None:
    gen_id = completed_files(sessions, 3)
    due = lease_all(sessions, gen_id, 3)
    stale = replace(due[2], lease_until=utcnow())  # not the lease it holds
    writer = OutcomeWriter(context(sessions))
    writer.add(due[0], stored(0))
    writer.add(due[1], stored(1))
    writer.add(stale, stored(2))
    assert dict(writer.close()) == {"stored": 2, "lost_lease": 1}
    with sessions() as session:
        statuses = session.scalars(
            select(MediaFile.status)
            .where(MediaFile.generation_id == gen_id)
            .order_by(MediaFile.position)
        ).all()
    assert statuses == ["stored", "stored", "pending"]


def test_a_failed_write_is_raised_when_the_writer_closes(
    sessions: sessionmaker[Session],
) -> None:
    gen_id = completed_files(sessions, 1)
    [due] = lease_all(sessions, gen_id, 1)
    engine = create_engine(
        "postgresql+psycopg://nobody@127.0.0.1:9/none", connect_args={"connect_timeout": 1}
    )
    writer = OutcomeWriter(context(sessionmaker(bind=engine)))
    writer.add(due, stored(0))
    with pytest.raises(OperationalError):
        writer.close()
    assert writer.counts == {"unrecorded": 1}
    with sessions() as session:  # its lease still holds: a later tick copies it again
        row = session.scalars(select(MediaFile).where(MediaFile.generation_id == gen_id)).one()
        assert (row.status, row.lease_until) == ("pending", due.lease_until)


def test_a_file_whose_lease_ran_out_in_the_queue_is_not_copied(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    gen_id = completed_files(sessions, 1)
    [due] = lease_all(sessions, gen_id, 1)
    late = replace(due, lease_until=utcnow() - timedelta(seconds=1))
    fetched: list[str] = []

    def cdn(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, content=b"\x89PNG\r\n\x1a\n")

    with httpx.Client(transport=httpx.MockTransport(cdn)) as http:
        outcome = _attempt(context(sessions), open_store(f"file://{tmp_path}"), http, late)
    assert (outcome.status, outcome.reason) == (
        MediaStatus.PENDING,
        "the lease ran out before the copy began",
    )
    assert outcome.retry_at is not None
    assert fetched == []
