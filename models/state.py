"""Compare-and-set transitions and the event log.

Every status change is ``UPDATE … WHERE id = :id AND status IN (:allowed_from)`` with a rowcount
check, so a duplicate or late task delivery loses harmlessly: it simply does not win.

The UPDATEs are Core statements over ``GENERATIONS``; give ``where`` and ``values`` its columns
(``GENERATIONS.c.lease_token``). An ORM attribute works too, but sends the statement through
the ORM's bulk-update path, which costs a worker noticeably more CPU (benchmarks/HISTORY.md).
"""

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Update, insert, update
from sqlalchemy.orm import Session

from models.status import ALLOWED_FROM, GenerationStatus
from models.tables import EVENTS, GENERATIONS, GenerationEvent
from models.vocabulary import EventKind

log = logging.getLogger("genqueue.events")


def record_event(
    session: Session,
    generation_id: uuid.UUID,
    *,
    kind: EventKind,
    now: datetime,
    status: GenerationStatus | None = None,
    queue_position: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Append one event (written with the session's next flush) and log it."""
    session.add(GenerationEvent(**_event(generation_id, kind, now, status, queue_position, detail)))


def record_events(
    session: Session,
    generation_ids: Sequence[uuid.UUID],
    *,
    kind: EventKind,
    now: datetime,
    status: GenerationStatus | None = None,
) -> None:
    """The same event for many generations, in one statement now, each logged."""
    rows = [_event(i, kind, now, status, None, None) for i in generation_ids]
    if rows:
        session.execute(insert(EVENTS), rows)


def log_events(
    generation_ids: Iterable[uuid.UUID], *, kind: EventKind, status: GenerationStatus | None = None
) -> None:
    """The log lines of events written by a statement of the caller's own."""
    for generation_id in generation_ids:
        log_event(generation_id, kind, status, None, None)


def event_row(
    generation_id: uuid.UUID,
    *,
    kind: EventKind,
    now: datetime,
    status: GenerationStatus | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An event row for a Core ``insert(EVENTS)`` of the caller's own (logged now)."""
    return _event(generation_id, kind, now, status, None, detail)


def _event(
    generation_id: uuid.UUID,
    kind: EventKind,
    now: datetime,
    status: GenerationStatus | None,
    queue_position: int | None,
    detail: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """An event row; every event is also a log line (``genqueue.events``)."""
    log_event(generation_id, kind, status, queue_position, detail)
    return event_values(generation_id, kind, now, status, queue_position, detail)


def event_values(
    generation_id: uuid.UUID,
    kind: EventKind,
    now: datetime,
    status: GenerationStatus | None = None,
    queue_position: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An event row, not logged: for a caller that logs its events its own way."""
    return {
        "generation_id": generation_id,
        "at": now,
        "kind": kind.value,
        "status": status.value if status else None,
        "queue_position": queue_position,
        "detail": dict(detail) if detail else None,
    }


def log_event(
    generation_id: uuid.UUID,
    kind: EventKind,
    status: GenerationStatus | None,
    queue_position: int | None,
    detail: Mapping[str, Any] | None,
) -> None:
    """The log line (``genqueue.events``) of one event, written or not."""
    extra = {"generation_id": str(generation_id), "event": kind.value}
    if detail and detail.get("request_id"):
        extra["request_id"] = str(detail["request_id"])
    log.info(
        "generation %s: %s%s%s",
        generation_id,
        kind.value,
        f" status={status.value}" if status else "",
        f" queue_position={queue_position}" if queue_position is not None else "",
        extra=extra,
    )


def transition(
    session: Session,
    generation_id: uuid.UUID,
    *,
    to: GenerationStatus,
    now: datetime,
    allowed_from: Iterable[GenerationStatus] | None = None,
    values: Mapping[str, Any] | None = None,
    where: Iterable[ColumnElement[bool]] = (),
    event_kind: EventKind = EventKind.STATUS,
    detail: Mapping[str, Any] | None = None,
    queue_position: int | None = None,
) -> bool:
    """Move one generation to ``to`` if it is still in an allowed state; return whether it won.

    ``allowed_from`` narrows (never widens) the state machine's table; ``where`` adds conditions
    such as a lease token. On a win an event row is added in the same transaction.
    """
    stmt = _compare_and_set(
        to, now=now, allowed_from=allowed_from, values=values, where=where
    ).where(GENERATIONS.c.id == generation_id)
    if session.execute(stmt).rowcount != 1:  # type: ignore[attr-defined]
        return False
    record_event(
        session,
        generation_id,
        kind=event_kind,
        now=now,
        status=to,
        queue_position=queue_position,
        detail=detail,
    )
    return True


def transition_many(
    session: Session,
    generation_ids: Sequence[uuid.UUID],
    *,
    to: GenerationStatus,
    now: datetime,
    allowed_from: Iterable[GenerationStatus] | None = None,
    values: Mapping[str, Any] | None = None,
    where: Iterable[ColumnElement[bool]] = (),
    event_kind: EventKind = EventKind.STATUS,
    details: Mapping[uuid.UUID, Mapping[str, Any]] | None = None,
) -> list[uuid.UUID]:
    """:func:`transition` for many generations in one ``UPDATE … RETURNING``: the same guard
    and the same values for each. Returns the ids that won (in the order given), each with its
    event (``details[id]`` when given)."""
    if not generation_ids:
        return []
    stmt = (
        _compare_and_set(to, now=now, allowed_from=allowed_from, values=values, where=where)
        .where(GENERATIONS.c.id.in_(generation_ids))
        .returning(GENERATIONS.c.id)
    )
    won = set(session.scalars(stmt).all())
    ordered = [i for i in dict.fromkeys(generation_ids) if i in won]
    for generation_id in ordered:
        detail = details.get(generation_id) if details else None
        record_event(session, generation_id, kind=event_kind, now=now, status=to, detail=detail)
    return ordered


def _compare_and_set(
    to: GenerationStatus,
    *,
    now: datetime,
    allowed_from: Iterable[GenerationStatus] | None,
    values: Mapping[str, Any] | None,
    where: Iterable[ColumnElement[bool]],
) -> Update:
    """The guarded UPDATE behind every transition, without its id condition."""
    legal = ALLOWED_FROM[to]
    sources = legal if allowed_from is None else legal.intersection(allowed_from)
    if not sources:
        raise ValueError(f"no legal transition to {to} from {sorted(allowed_from or ())}")
    return (
        update(GENERATIONS)
        .where(GENERATIONS.c.status.in_([s.value for s in sources]))
        .where(*where)
        .values(status=to.value, updated_at=now, **dict(values or {}))
    )


def update_where(
    session: Session,
    generation_id: uuid.UUID,
    *,
    now: datetime,
    statuses: Iterable[GenerationStatus],
    values: Mapping[str, Any],
    where: Iterable[ColumnElement[bool]] = (),
) -> bool:
    """Change columns without changing status, under the same compare-and-set guard."""
    stmt = (
        update(GENERATIONS)
        .where(GENERATIONS.c.id == generation_id)
        .where(GENERATIONS.c.status.in_([s.value for s in statuses]))
        .where(*where)
        .values(updated_at=now, **dict(values))
    )
    return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]
