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

import asyncio
import logging
import queue
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.publisher import Publisher, publish_after_commit
from models import tasknames
from models.batch import write_together
from models.db import UNREACHABLE
from models.generations import Inserted, NewGeneration, insert_generations
from models.status import WAITING
from models.tables import Generation

log = logging.getLogger(__name__)
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
    future: "Future[Accepted]"
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
    """One writer thread per API process, started on first use, drained on close."""

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
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def accept(self, new: NewGeneration, *, position: bool = False) -> Accepted:
        """Insert ``new`` (with whatever else is waiting) and publish it; raise what the
        database raised if its group could not be committed. ``position``: count the
        generations waiting ahead of it (fal's submit answer has a queue_position; a count over
        a backlog is not free, so only groups that need it pay for it)."""
        return await asyncio.wrap_future(self.submit(new, position=position))

    def submit(self, new: NewGeneration, *, position: bool = False) -> "Future[Accepted]":
        future: Future[Accepted] = Future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="intake", daemon=True)
                self._thread.start()
            self._queue.put(_Item(new, future, position))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer once what is queued is written and answered (like the engine, the
        intake starts again on its next use)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._next_group()
            live = [item for item in batch if item.future.set_running_or_notify_cancel()]
            try:
                if live:
                    self._write(live)
            except BaseException as exc:
                # Nothing may leave a request waiting forever or stop the writer for the rest.
                log.exception("the intake failed a group unexpectedly")
                for item in live:
                    if not item.future.done():
                        item.future.set_exception(exc)

    def _next_group(self) -> tuple[list[_Item], bool]:
        """Everything waiting (at least one item, waited for; at most ``max_batch``), and
        whether :meth:`close` asked the writer to stop after it."""
        first = self._queue.get()
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < self._limits.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[_Item]) -> None:
        try:
            outcomes = write_together(
                self._sessions(), batch, self._insert, refused=_refused, what="create"
            )
        except UNREACHABLE as exc:
            for item in batch:
                item.future.set_exception(exc)
            return
        created = [
            str(o.inserted.id) for o in outcomes if isinstance(o, Accepted) and o.inserted.created
        ]
        size = max(1, self._limits.publish_chunk)
        for start in range(0, len(created), size):
            chunk = created[start : start + size]
            publish_after_commit(self._publisher, tasknames.SUBMIT_MANY, [chunk])
        for item, outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, Accepted):
                item.future.set_result(outcome)
            else:
                item.future.set_exception(outcome)

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
