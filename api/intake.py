"""The API's write path: new generations are committed in groups, then published in groups.

A request hands its validated generation to :class:`Intake` and awaits the outcome. One writer
thread takes everything that is waiting, inserts it atomically (on PostgreSQL one statement in
autocommit, so one round trip; on SQLite two statements and a commit), publishes
``generation.submit_many`` messages for the rows it created (one per worker submit wave), and
only then answers each request. While one group is written the next gathers, so under load one
statement serves many requests and under no load a request waits for nobody
(group commit).

Nothing is answered before its row is committed. A database outage fails every request of
its group (each caller's 503) and creates nothing; any other failure of a group's transaction
has its rows written one by one (:func:`models.batch.write_together`), so a row the database
refuses fails only its own request.

A fal submit answers with a ``queue_position``: the writer counts the generations waiting to be
sent upstream once per group and tenant (:func:`waiting`), and only for groups with a request
that asks. Only the caller's own tenant is counted: another tenant's backlog is none of its
business (issue 19).
"""

import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.groupwriter import GroupWriter
from api.publisher import Publisher, publish_after_commit
from models import tasknames
from models.batch import write_together
from models.db import UNREACHABLE
from models.generations import Inserted, NewGeneration, insert_generations
from models.status import WAITING
from models.tables import Generation

MAX_COUNTED = 10_000
"""Positions are counted up to here: clients poll often, and beyond it the number means little."""


@dataclass(frozen=True)
class Accepted:
    """One request's outcome: the insert (or the key's holder) and, when it was asked for, how
    many of its tenant's generations were waiting to be sent upstream ahead of it."""

    inserted: Inserted
    now: datetime
    queue_position: int | None


@dataclass(frozen=True)
class _Item:
    new: NewGeneration
    position: bool


@dataclass(frozen=True)
class IntakeLimits:
    deadline_seconds: float
    submit_grace_seconds: float
    max_batch: int = 500
    publish_chunk: int = 16
    """Ids per ``generation.submit_many`` message: the worker's submit wave
    (``GENQUEUE_SUBMIT_BATCH_SIZE``), so one task is one wave, bounded by one submit's
    timeout, and a big group spreads over every worker process."""


class Intake:
    """One writer thread per API process (:class:`api.groupwriter.GroupWriter`), started on
    first use, drained on close."""

    def __init__(
        self,
        *,
        sessions: Callable[[], sessionmaker[Session]],
        publisher: Publisher,
        limits: IntakeLimits,
        clock: Callable[[], datetime],
    ) -> None:
        self._sessions = sessions
        self._publisher = publisher
        self._limits = limits
        self._clock = clock
        # A request whose client went away before its group was taken creates nothing.
        self._writer: GroupWriter[_Item, Accepted] = GroupWriter(
            self._write, name="intake", max_group=limits.max_batch, write_abandoned=False
        )

    async def accept(self, new: NewGeneration, *, position: bool = False) -> Accepted:
        """Insert ``new`` (with whatever else is waiting) and publish it; raise what the
        database raised if its group could not be committed. ``position``: count the
        generations waiting ahead of it (fal's submit answer has a queue_position; a count over
        a backlog is not free, so only groups that need it pay for it)."""
        return await self._writer.put(_Item(new, position))

    def submit(self, new: NewGeneration, *, position: bool = False) -> "Future[Accepted]":
        """:meth:`accept` for a caller without an event loop."""
        return self._writer.submit(_Item(new, position))

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer once what is queued is written and answered (like the engine, the
        intake starts again on its next use)."""
        self._writer.close(timeout)

    def _write(self, batch: list[_Item]) -> list[Accepted | BaseException]:
        try:
            outcomes = write_together(
                self._sessions(), batch, self._insert, refused=_refused, what="create"
            )
        except UNREACHABLE as exc:
            return [exc] * len(batch)
        created = [
            str(o.inserted.id) for o in outcomes if isinstance(o, Accepted) and o.inserted.created
        ]
        size = max(1, self._limits.publish_chunk)
        for start in range(0, len(created), size):
            chunk = created[start : start + size]
            publish_after_commit(self._publisher, tasknames.SUBMIT_MANY, [chunk])
        return list(outcomes)

    def _insert(self, session: Session, batch: Sequence[_Item]) -> list[Accepted | Exception]:
        now = self._clock()
        ahead = {
            tenant: waiting(session, tenant_id=tenant)
            for tenant in {item.new.tenant_id for item in batch if item.position}
        }
        inserted = insert_generations(
            session,
            [item.new for item in batch],
            now=now,
            deadline_seconds=self._limits.deadline_seconds,
            submit_grace_seconds=self._limits.submit_grace_seconds,
        )
        out: list[Accepted | Exception] = []
        for item, outcome in zip(batch, inserted, strict=True):
            tenant = item.new.tenant_id
            position = min(ahead[tenant], MAX_COUNTED) if item.position else None
            out.append(Accepted(outcome, now, position))
            if tenant in ahead:
                ahead[tenant] += outcome.created
        return out


def _refused(_: _Item, exc: Exception) -> Exception:
    """A row the database refused even alone: its request is answered with the error."""
    return exc


def waiting(
    session: Session, *, tenant_id: uuid.UUID, created_before: datetime | None = None
) -> int:
    """Tenant ``tenant_id``'s generations not yet accepted upstream (created before
    ``created_before``, if given), counted up to ``MAX_COUNTED``. Other tenants' are not
    counted: a position must not tell one tenant how busy another is."""
    query = select(Generation.id).where(
        Generation.tenant_id == tenant_id, Generation.status.in_([s.value for s in WAITING])
    )
    if created_before is not None:
        query = query.where(Generation.created_at < created_before)
    ahead = query.limit(MAX_COUNTED).subquery()
    return int(session.scalar(select(func.count()).select_from(ahead)) or 0)
