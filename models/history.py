"""A generation's queue positions over time, kept compactly in its event log.

Upstream reports a waiting job's queue position on every poll. Every change is kept with its
time, but not as an event row each (they were most of the table): a run of changes with no
other event between them is one ``queue_position`` event. Its ``detail.positions`` lists
``[at, position]`` pairs, oldest first (``at`` in ISO 8601, UTC), and its ``at`` and
``queue_position`` columns are the run's latest. A run holds at most ``RUN_LIMIT`` pairs; the
next change starts a new row. A position that came with another event (the submit's answer, a
status change) stays on that event. :func:`queue_positions` reads the whole series back.

In SQL, one generation's runs on PostgreSQL (on SQLite, ``json_each`` instead)::

    SELECT (p->>0)::timestamptz AS at, (p->>1)::int AS position
    FROM generation_events AS e, jsonb_array_elements(e.detail->'positions') AS p
    WHERE e.generation_id = :id AND e.kind = 'queue_position' ORDER BY e.id
"""

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.state import log_event, record_event
from models.status import GenerationStatus
from models.tables import EVENTS
from models.vocabulary import EventKind

RUN_LIMIT = 100
"""Most ``[at, position]`` pairs one ``queue_position`` event holds."""


class EventLike(Protocol):
    """What :func:`positions_in` reads of an event (an ORM event or a result row)."""

    @property
    def kind(self) -> str: ...
    @property
    def at(self) -> datetime: ...
    @property
    def queue_position(self) -> int | None: ...
    @property
    def detail(self) -> Mapping[str, Any] | None: ...


def record_queue_position(
    session: Session,
    generation_id: uuid.UUID,
    *,
    position: int,
    now: datetime,
    status: GenerationStatus | None,
) -> None:
    """Add ``position``, seen at ``now``, to the job's current run: its latest event when that
    is a run with room, else a new ``queue_position`` event. The caller holds the job (its
    lease), so no one else writes its events meanwhile."""
    latest = session.execute(
        select(EVENTS.c.id, EVENTS.c.kind, EVENTS.c.at, EVENTS.c.queue_position, EVENTS.c.detail)
        .where(EVENTS.c.generation_id == generation_id)
        .order_by(EVENTS.c.id.desc())
        .limit(1)
    ).first()
    pair = [now.isoformat(), position]
    if latest is not None and latest.kind == EventKind.QUEUE_POSITION.value:
        run = _pairs(latest)
        if len(run) < RUN_LIMIT:
            session.execute(
                update(EVENTS)
                .where(EVENTS.c.id == latest.id)
                .values(at=now, queue_position=position, detail={"positions": [*run, pair]})
            )
            log_event(generation_id, EventKind.QUEUE_POSITION, status, position, None)
            return
    record_event(
        session,
        generation_id,
        kind=EventKind.QUEUE_POSITION,
        now=now,
        status=status,
        queue_position=position,
        detail={"positions": [pair]},
    )


def positions_in(events: Iterable[EventLike]) -> list[tuple[datetime, int]]:
    """Every queue position the events record, with its time, in the order they were seen."""
    series: list[tuple[datetime, int]] = []
    for event in events:
        if event.kind == EventKind.QUEUE_POSITION.value:
            series.extend((datetime.fromisoformat(at), int(p)) for at, p in _pairs(event))
        elif event.queue_position is not None:
            series.append((event.at, event.queue_position))
    return series


def queue_positions(session: Session, generation_id: uuid.UUID) -> list[tuple[datetime, int]]:
    """The generation's queue positions over time (what a chart of its wait plots)."""
    rows = session.execute(
        select(EVENTS.c.kind, EVENTS.c.at, EVENTS.c.queue_position, EVENTS.c.detail)
        .where(EVENTS.c.generation_id == generation_id)
        .order_by(EVENTS.c.id)
    ).all()
    return positions_in(rows)


def _pairs(event: EventLike) -> list[list[Any]]:
    """A run's pairs; an event written before runs were kept (no ``positions``) is its own."""
    pairs = (event.detail or {}).get("positions")
    if isinstance(pairs, list):
        return [list(pair) for pair in pairs]
    if event.queue_position is None:
        return []
    return [[event.at.isoformat(), event.queue_position]]
