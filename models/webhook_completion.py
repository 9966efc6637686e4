"""The common webhook, a success with its payload for a job still upstream, for many jobs at
once: one compare-and-set ``UPDATE … RETURNING`` for the whole group and one insert of its
events, whatever the group's size (``models/upstream_webhook.py`` settles the rest one by one).

Each job's payload differs, so the UPDATE picks it with a ``CASE`` on the request id (a
``VALUES`` join would be shorter on PostgreSQL, but SQLite, which ``genqueue up`` uses, does
not name a ``VALUES`` list's columns). The guard is the one every transition has: only a job
still in an active status moves, so a duplicate, a racing poll or a job already ended is left
alone and the caller finds out why.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Float, case, cast, func, insert, literal, update
from sqlalchemy.orm import Session

from models.media import media_status_for
from models.state import event_row
from models.status import ACTIVE, GenerationStatus
from models.tables import EVENTS, GENERATIONS
from models.types import JSONType, UTCDateTime
from models.vocabulary import EventKind

TOO_LATE = "cancel came too late: upstream finished the job"


class Success(Protocol):
    """What a completing webhook brings (``models.upstream_webhook.FalWebhook``)."""

    @property
    def request_id(self) -> str: ...

    @property
    def payload(self) -> Any: ...


def terminal_values(now: datetime, *, completed: bool) -> dict[str, Any]:
    """What every end writes. A webhook carries no billable units: a completed job costs its
    estimate, a failed or cancelled one nothing (models/pricing.py)."""
    return {
        "final_cost": GENERATIONS.c.estimated_cost if completed else literal(0.0),
        "completed_at": now,
        "next_poll_at": None,
        "lease_token": None,
        "lease_until": None,
        "queue_position": None,
        "error_count": 0,
    }


def complete_together(
    session: Session, hooks: Sequence[Success], *, now: datetime
) -> dict[str, datetime]:
    """Complete every job still upstream under one of ``hooks``' request ids (distinct) with
    its payload as the result, each with its ``completed`` and ``upstream_webhook`` events; the
    request ids that won, each with its job's creation time."""
    if not hooks:
        return {}
    by_request = {hook.request_id: hook.payload for hook in hooks}
    if len(by_request) != len(hooks):
        raise ValueError("complete_together takes one webhook per request id")
    request_id = GENERATIONS.c.upstream_request_id
    won = session.execute(
        update(GENERATIONS)
        .where(request_id.in_(list(by_request)), GENERATIONS.c.status.in_(_ACTIVE))
        .values(
            status=GenerationStatus.COMPLETED.value,
            updated_at=now,
            result=_per_request({r: literal(p, JSONType) for r, p in by_request.items()}),
            media_status=_per_request(  # the media tick copies the files
                {r: literal(media_status_for(p)) for r, p in by_request.items()}
            ),
            error=None,
            run_seconds=_seconds_since_submit(session, now),
            **terminal_values(now, completed=True),
        )
        .returning(
            GENERATIONS.c.id,
            request_id,
            GENERATIONS.c.created_at,
            GENERATIONS.c.cancel_requested_at,
        )
    ).all()
    rows: list[dict[str, Any]] = []
    created: dict[str, datetime] = {}
    for gen_id, upstream_id, created_at, cancel_requested_at in won:
        rows.extend(_events(gen_id, upstream_id, cancel_requested_at, now))
        created.setdefault(upstream_id, created_at)
    if rows:
        session.execute(insert(EVENTS), rows)
    return created


_ACTIVE = [s.value for s in ACTIVE]


def _per_request(values: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """The value of the row's request id: a ``CASE`` when the group has more than one."""
    if len(values) == 1:
        return next(iter(values.values()))
    return case(values, value=GENERATIONS.c.upstream_request_id)


def _events(
    gen_id: uuid.UUID, request_id: str, cancel_requested_at: datetime | None, now: datetime
) -> list[dict[str, Any]]:
    detail: dict[str, Any] = {"via": "webhook"}
    if cancel_requested_at:
        detail.update(cancel_requested=True, note=TOO_LATE)
    completed = GenerationStatus.COMPLETED
    return [
        event_row(gen_id, kind=EventKind.COMPLETED, now=now, status=completed, detail=detail),
        event_row(
            gen_id,
            kind=EventKind.UPSTREAM_WEBHOOK,
            now=now,
            detail={"request_id": request_id, "status": "OK", "outcome": "completed"},
        ),
    ]


def _seconds_since_submit(session: Session, now: datetime) -> ColumnElement[float]:
    """``now - submitted_at`` in seconds, computed by the database in the UPDATE."""
    at = literal(now, UTCDateTime())
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", at - GENERATIONS.c.submitted_at), Float)
    return (func.julianday(at) - func.julianday(GENERATIONS.c.submitted_at)) * 86400.0
