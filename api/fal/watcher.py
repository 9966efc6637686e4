"""One database check per interval for every open status stream of an API process.

Each stream registers a :class:`Watch` (which generation, and in which shape: fal's status body
for a URL base, with or without logs, or the native ``/v1`` one). A single task looks at the
set of watched generations in one query every ``GENQUEUE_STREAM_POLL_INTERVAL`` and hands each
watch its new status body; 400 streams on one job cost what one does. A key may hold
``GENQUEUE_STREAM_MAX_PER_KEY`` streams at once in a process (429 beyond), fal's and ``/v1``'s
together. The task runs only while some stream is open.
"""

import asyncio
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from api.fal.answers import fal_urls, log_entries, status_body
from api.lookups import events_of, local_queue_position
from models.status import TERMINAL, WAITING, GenerationStatus
from models.tables import Generation

log = logging.getLogger(__name__)
Variant = tuple[uuid.UUID, str, bool, bool]
"""What a body depends on: generation, URL base, with logs, native (``/v1``) shape."""


@dataclass(eq=False)
class Watch:
    """One open stream: the latest status body, and an event set whenever it changes."""

    key_id: uuid.UUID
    generation_id: uuid.UUID
    base: str
    with_logs: bool
    body: dict[str, Any] | None
    native: bool = False
    """The ``/v1`` body (:func:`native_status_body`) instead of fal's (``base`` unused)."""
    gone: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def variant(self) -> Variant:
        return (self.generation_id, self.base, self.with_logs, self.native)


def too_many_streams(limit: int) -> ApiError:
    return ApiError(
        429,
        f"This API key already has {limit} open status streams (GENQUEUE_STREAM_MAX_PER_KEY); "
        "close one, or poll the status URL",
        headers={"Retry-After": "5"},
    )


def native_status_body(gen: Generation, *, local_queue_position: int | None) -> dict[str, Any]:
    """What ``GET /v1/generations/{id}/stream`` sends: the fields that change while a
    generation moves (a client fetches the whole record when it wants more)."""
    return {
        "id": str(gen.id),
        "status": gen.status,
        "queue_position": gen.queue_position,
        "local_queue_position": local_queue_position,
        "cancel_requested_at": _iso(gen.cancel_requested_at),
        "completed_at": _iso(gen.completed_at),
        "media_status": gen.media_status,
    }


def native_stream_ends(body: dict[str, Any]) -> bool:
    """A ``/v1`` stream's last body: the generation has ended and no file copy is pending."""
    return GenerationStatus(body["status"]) in TERMINAL and body["media_status"] != "pending"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def look(
    session: Session, variants: set[Variant], *, fair: bool = False
) -> dict[Variant, dict[str, Any] | None]:
    """The status body of every variant (``None``: the generation no longer exists), from one
    query for all watched rows; a queue position (``fair``: under fair scheduling, see
    :func:`api.lookups.queue_position`) and the events once per generation."""
    ids = {variant[0] for variant in variants}
    rows = session.scalars(select(Generation).where(Generation.id.in_(ids))).all()
    found = {gen.id: gen for gen in rows}
    local = {gid: local_queue_position(session, gen, fair=fair) for gid, gen in found.items()}
    logs = {
        gid: log_entries(events_of(session, gid))
        for gid in {v[0] for v in variants if v[2] and not v[3] and v[0] in found}
    }
    bodies: dict[Variant, dict[str, Any] | None] = {}
    for variant in variants:
        gid, base, with_logs, native = variant
        gen = found.get(gid)
        if gen is None:
            bodies[variant] = None
        elif native:
            bodies[variant] = native_status_body(gen, local_queue_position=local[gid])
        else:
            waiting = gen.status in WAITING  # as api.lookups.queue_position says
            position = (local[gid] if waiting else gen.queue_position) or 0
            bodies[variant] = status_body(
                gen,
                fal_urls(base, gen.model, str(gid)),
                queue_position=position,
                logs=logs.get(gid) if with_logs else None,
            )
    return bodies


class StreamWatcher:
    """The process's watches, counted per key, and the one task that refreshes them."""

    def __init__(
        self,
        *,
        sessions: Callable[[], sessionmaker[Session]],
        interval: float,
        max_per_key: int,
        fair: bool = False,
    ) -> None:
        self._sessions = sessions
        self.fair = fair
        """Queue positions in the fair order (a global ``max_in_flight`` is set)."""
        self.interval = interval
        self.max_per_key = max_per_key
        self._lock = threading.Lock()
        self._watches: set[Watch] = set()
        self._per_key: Counter[uuid.UUID] = Counter()
        self._task: asyncio.Task[None] | None = None
        self.looks = 0
        """Database checks made so far (one per interval while streams are open)."""

    def open(self, watch: Watch) -> Watch:
        """Register ``watch``; 429 if its key holds :attr:`max_per_key` already. Thread-safe
        (routes call it from a worker thread)."""
        with self._lock:
            if self._per_key[watch.key_id] >= self.max_per_key:
                raise too_many_streams(self.max_per_key)
            self._per_key[watch.key_id] += 1
            self._watches.add(watch)
        return watch

    def close(self, watch: Watch) -> None:
        with self._lock:
            if watch not in self._watches:
                return
            self._watches.discard(watch)
            self._per_key[watch.key_id] -= 1
            if self._per_key[watch.key_id] <= 0:
                del self._per_key[watch.key_id]

    def open_count(self, key_id: uuid.UUID | None = None) -> int:
        with self._lock:
            return len(self._watches) if key_id is None else self._per_key[key_id]

    def ensure_running(self) -> None:
        """Start the refresh task on the running loop unless it runs already. Streams call it
        whenever they wake, so a task that died of an unexpected error is started again."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
            self._task.add_done_callback(_report_failure)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with self._lock:
                watches = list(self._watches)
            if not watches:
                return  # the next stream starts a new task
            try:
                bodies = await run_in_threadpool(self._look, {w.variant for w in watches})
            except SQLAlchemyError as exc:  # waited out: the streams keep their last body
                log.warning("status streams: database error, retrying: %s", type(exc).__name__)
                continue
            for watch in watches:
                self._hand(watch, bodies.get(watch.variant))

    def _look(self, variants: set[Variant]) -> dict[Variant, dict[str, Any] | None]:
        self.looks += 1
        with self._sessions()() as session:
            return look(session, variants, fair=self.fair)

    @staticmethod
    def _hand(watch: Watch, body: dict[str, Any] | None) -> None:
        if body is None:
            watch.gone = True
        elif body == watch.body:
            return
        watch.body = body
        watch.changed.set()


def _report_failure(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("status streams: the watcher stopped; the next stream restarts it", exc_info=exc)
