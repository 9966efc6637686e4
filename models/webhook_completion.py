"""The common webhook, a success with its payload for a job still upstream, for many jobs at
once: one compare-and-set ``UPDATE … RETURNING`` for the whole group and one insert of its
events, whatever the group's size (``models/upstream_webhook.py`` settles the rest one by one).

On PostgreSQL the group's request ids, payloads and media statuses are three array parameters
joined to the table (``ROWS FROM (unnest(…), …)``), and the UPDATE and its events are one
statement whose SQL text is the same for every group, so it is compiled once and prepared by
the server. SQLite, which ``genqueue up`` uses, picks each job's payload with a ``CASE`` on the
request id and inserts the events after. The guard is the one every transition has: only a job
still in an active status moves, so a duplicate, a racing poll or a job already ended is left
alone and the caller finds out why.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Float,
    Select,
    Text,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from models.generations import RowsFrom
from models.media import media_status_for
from models.state import event_values, log_event
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


def terminal_values(now: datetime | ColumnElement[Any], *, completed: bool) -> dict[str, Any]:
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
    if session.get_bind().dialect.name == "postgresql":
        return _complete_on_postgresql(session, by_request, now)
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
        _log(gen_id, upstream_id)
        created.setdefault(upstream_id, created_at)
    if rows:
        session.execute(insert(EVENTS), rows)
    return created


_ACTIVE = [s.value for s in ACTIVE]


def _completed_statement() -> Select[Any]:
    """PostgreSQL: a group's ``UPDATE … FROM ROWS FROM (unnest(:request_ids),
    jsonb_array_elements(:results), unnest(:media_statuses))`` and the INSERT of its events, in
    one statement whose SQL text is the same for any group (a ``CASE`` over the payloads made
    each group's statement new to compile; benchmarks/RESULTS.md, B4). The events are the ones
    :func:`_events` builds."""
    g = GENERATIONS.c
    new = (
        RowsFrom(
            func.unnest(bindparam("request_ids", type_=ARRAY(Text()))),
            func.jsonb_array_elements(bindparam("results", type_=JSONB)),
            func.unnest(bindparam("media_statuses", type_=ARRAY(Text()))),
        )
        .table_valued("request_id", "result", "media_status")
        .render_derived(name="new")
    )
    now = bindparam("now", type_=UTCDateTime())
    completed = GenerationStatus.COMPLETED.value
    won = (
        update(GENERATIONS)
        .where(
            g.upstream_request_id == new.c.request_id,
            g.status.in_([literal(s, Text()) for s in _ACTIVE]),  # not expanded per execution
        )
        .values(
            status=completed,
            updated_at=now,
            result=new.c.result,
            media_status=new.c.media_status,
            error=None,
            run_seconds=cast(func.extract("epoch", now - g.submitted_at), Float),
            **terminal_values(now, completed=True),
        )
        .returning(g.id, g.upstream_request_id, g.created_at, g.cancel_requested_at)
        .cte("won")
    )
    too_late = {"via": "webhook", "cancel_requested": True, "note": TOO_LATE}
    ended = select(
        won.c.id,
        now,
        literal(EventKind.COMPLETED.value, Text()),
        literal(completed, Text()),
        case(
            (won.c.cancel_requested_at.is_(None), literal({"via": "webhook"}, JSONB)),
            else_=literal(too_late, JSONB),
        ),
    )
    arrived = select(
        won.c.id,
        now,
        literal(EventKind.UPSTREAM_WEBHOOK.value, Text()),
        null(),
        func.jsonb_build_object(
            literal("request_id", Text()),
            won.c.upstream_request_id,
            literal("status", Text()),
            literal("OK", Text()),
            literal("outcome", Text()),
            literal("completed", Text()),
        ),
    )
    events = (
        insert(EVENTS)
        .from_select(["generation_id", "at", "kind", "status", "detail"], union_all(ended, arrived))
        .cte("events")
    )
    return select(won.c.id, won.c.upstream_request_id, won.c.created_at).add_cte(events)


_COMPLETED = _completed_statement()


def _complete_on_postgresql(
    session: Session, by_request: dict[str, Any], now: datetime
) -> dict[str, datetime]:
    params = {
        "request_ids": list(by_request),
        "results": list(by_request.values()),
        "media_statuses": [media_status_for(p) for p in by_request.values()],
        "now": now,
    }
    created: dict[str, datetime] = {}
    for gen_id, upstream_id, created_at in session.execute(_COMPLETED, params):
        _log(gen_id, upstream_id)
        created.setdefault(upstream_id, created_at)
    return created


def _per_request(values: dict[str, ColumnElement[Any]]) -> ColumnElement[Any]:
    """The value of the row's request id: a ``CASE`` when the group has more than one."""
    if len(values) == 1:
        return next(iter(values.values()))
    return case(values, value=GENERATIONS.c.upstream_request_id)


def _events(
    gen_id: uuid.UUID, request_id: str, cancel_requested_at: datetime | None, now: datetime
) -> list[dict[str, Any]]:
    """The job's ``completed`` and ``upstream_webhook`` events (logged by :func:`_log`)."""
    detail: dict[str, Any] = {"via": "webhook"}
    if cancel_requested_at:
        detail.update(cancel_requested=True, note=TOO_LATE)
    completed = GenerationStatus.COMPLETED
    arrived = {"request_id": request_id, "status": "OK", "outcome": "completed"}
    return [
        event_values(gen_id, EventKind.COMPLETED, now, completed, detail=detail),
        event_values(gen_id, EventKind.UPSTREAM_WEBHOOK, now, detail=arrived),
    ]


def _log(gen_id: uuid.UUID, request_id: str) -> None:
    """One line per completed job, not one per event: the ``completed`` line, with the request
    id (``request_id`` in the JSON logs), says all the ``upstream_webhook`` one would."""
    log_event(
        gen_id, EventKind.COMPLETED, GenerationStatus.COMPLETED, None, {"request_id": request_id}
    )


def _seconds_since_submit(session: Session, now: datetime) -> ColumnElement[float]:
    """``now - submitted_at`` in seconds, computed by the database in the UPDATE."""
    at = literal(now, UTCDateTime())
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.extract("epoch", at - GENERATIONS.c.submitted_at), Float)
    return (func.julianday(at) - func.julianday(GENERATIONS.c.submitted_at)) * 86400.0
