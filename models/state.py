"""Compare-and-set transitions and the event log.

Every status change is ``UPDATE … WHERE id = :id AND status IN (:allowed_from)`` with a rowcount
check, so a duplicate or late task delivery loses harmlessly: it simply does not win.
"""

import logging
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from models.status import ALLOWED_FROM, GenerationStatus
from models.tables import Generation, GenerationEvent

log = logging.getLogger("genqueue.events")


def record_event(
    session: Session,
    generation_id: uuid.UUID,
    *,
    kind: str,
    now: datetime,
    status: GenerationStatus | None = None,
    queue_position: int | None = None,
    detail: Mapping[str, Any] | None = None,
) -> None:
    extra = {"generation_id": str(generation_id), "event": kind}
    if detail and detail.get("request_id"):
        extra["request_id"] = str(detail["request_id"])
    log.info(
        "generation %s: %s%s%s",
        generation_id,
        kind,
        f" status={status.value}" if status else "",
        f" queue_position={queue_position}" if queue_position is not None else "",
        extra=extra,
    )
    session.add(
        GenerationEvent(
            generation_id=generation_id,
            at=now,
            kind=kind,
            status=status.value if status else None,
            queue_position=queue_position,
            detail=dict(detail) if detail else None,
        )
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
    event_kind: str = "status",
    detail: Mapping[str, Any] | None = None,
    queue_position: int | None = None,
) -> bool:
    """Move one generation to ``to`` if it is still in an allowed state; return whether it won.

    ``allowed_from`` narrows (never widens) the state machine's table; ``where`` adds conditions
    such as a lease token. On a win an event row is added in the same transaction.
    """
    legal = ALLOWED_FROM[to]
    sources = legal if allowed_from is None else legal.intersection(allowed_from)
    if not sources:
        raise ValueError(f"no legal transition to {to} from {sorted(allowed_from or ())}")
    stmt = (
        update(Generation)
        .where(Generation.id == generation_id)
        .where(Generation.status.in_([s.value for s in sources]))
        .where(*where)
        .values(status=to.value, updated_at=now, **dict(values or {}))
        .execution_options(synchronize_session=False)
    )
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
        update(Generation)
        .where(Generation.id == generation_id)
        .where(Generation.status.in_([s.value for s in statuses]))
        .where(*where)
        .values(updated_at=now, **dict(values))
        .execution_options(synchronize_session=False)
    )
    return bool(session.execute(stmt).rowcount == 1)  # type: ignore[attr-defined]
