"""Creating generations and asking for their cancellation (shared by the API and the worker)."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Insert,
    String,
    Table,
    Text,
    bindparam,
    func,
    literal,
    literal_column,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.schema import ColumnDefault
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

from models.priority import Priority
from models.state import log_events, record_event, record_events, transition, update_where
from models.status import LIVE, TERMINAL, GenerationStatus
from models.tables import EVENTS, GENERATIONS, Generation
from models.vocabulary import EventKind


@dataclass(frozen=True)
class NewGeneration:
    """What a client asked for, validated: one row to insert."""

    tenant_id: uuid.UUID
    model: str
    input: dict[str, Any]
    idempotency_key: str | None = None
    request_hash: str | None = None
    webhook_url: str | None = None
    priority: Priority = Priority.NORMAL
    unit_price: float | None = None
    estimated_cost: float | None = None
    deadline_seconds: float | None = None
    """Seconds from creation to its deadline when not the intake's default (its model's
    runs are long: ``Catalogue.deadline_seconds``)."""
    copy_awaited: bool = False
    """A sync ``/run`` waits for its answer, copied files included."""


@dataclass(frozen=True)
class Inserted:
    """The outcome for one ``NewGeneration``: the row that was inserted, or, when its
    idempotency key was taken, the id and request hash of the generation holding the key."""

    id: uuid.UUID
    row: dict[str, Any] | None
    existing_hash: str | None = None

    @property
    def created(self) -> bool:
        return self.row is not None


def insert_generations(
    session: Session,
    new: Sequence[NewGeneration],
    *,
    now: datetime,
    deadline_seconds: float,
    submit_grace_seconds: float,
) -> list[Inserted]:
    """Insert pending generations and their ``created`` events, whatever the count, in one
    statement on PostgreSQL (atomic by itself, so a caller in autocommit needs no
    transaction) and two on SQLite. The caller commits, then publishes.

    A row whose (tenant, idempotency key) already exists is skipped by ``ON CONFLICT DO
    NOTHING``, not raised: concurrent requests with one key wait for each other in the
    database, and each learns which generation holds the key. ``next_poll_at`` is set
    ``submit_grace_seconds`` ahead: if the publish after commit is lost, the dispatcher finds
    the row then and submits it.
    """
    if not new:
        return []
    rows = [_row(item, now, deadline_seconds, submit_grace_seconds) for item in new]
    if session.get_bind().dialect.name == "postgresql":
        inserted = _insert_with_events(session, rows, now)
    else:
        stmt = sqlite_insert(GENERATIONS).on_conflict_do_nothing().returning(GENERATIONS.c.id)
        inserted = set(session.scalars(stmt, rows).all())
        created = [row["id"] for row in rows if row["id"] in inserted]
        if created:
            record_events(
                session, created, kind=EventKind.CREATED, now=now, status=GenerationStatus.PENDING
            )
    holders = _key_holders(session, [r for r in rows if r["id"] not in inserted])
    out = []
    for row in rows:
        if row["id"] in inserted:
            out.append(Inserted(row["id"], row))
            continue
        found = holders.get((row["tenant_id"], row["idempotency_key"]))
        if found is None:  # only a taken idempotency key can make the insert skip a row
            raise RuntimeError(f"generation {row['id']} was neither inserted nor a replay")
        out.append(Inserted(found[0], None, found[1]))
    return out


def _scalar_defaults(table: Table) -> dict[str, Any]:
    """The columns' fixed defaults (``status``, the counters), as the table declares them."""
    return {
        column.name: column.default.arg
        for column in table.c
        if isinstance(column.default, ColumnDefault) and column.default.is_scalar
    }


DEFAULTS = _scalar_defaults(GENERATIONS)
PER_ROW = (
    "id",
    "tenant_id",
    "model",
    "input",
    "idempotency_key",
    "request_hash",
    "webhook_url",
    "priority",
    "unit_price",
    "estimated_cost",
    "copy_awaited",
)
"""The columns whose values differ from row to row in a group; the others are the group's
(``now``, the deadline, the first poll) or the table's defaults."""


class RowsFrom(FunctionElement[Any]):
    """PostgreSQL's ``ROWS FROM (f1(...), f2(...), ...)``: set-returning functions side by
    side, one output row per position."""

    name = "rows_from"
    inherit_cache = True


@compiles(RowsFrom)
def _compile_rows_from(element: RowsFrom, compiler: SQLCompiler, **kw: Any) -> str:
    return f"ROWS FROM ({compiler.process(element.clause_expr.element, **kw)})"


def _elements(name: str) -> ColumnElement[Any]:
    """One column's values for the whole group, as one parameter: an array (of the column's
    type, any length, so a too-long value is refused by the insert rather than cut short by a
    cast), or, for ``input``, one JSON array (escaping JSON as array elements costs more)."""
    column_type = GENERATIONS.c[name].type
    if name == "input":
        return func.jsonb_array_elements(bindparam(name, type_=JSONB))
    if isinstance(column_type, String):
        column_type = Text()
    return func.unnest(bindparam(name, type_=ARRAY(column_type)))


def _inline(value: Any, type_: TypeEngine[Any]) -> ColumnElement[Any]:
    """``value`` written into the SQL text as a literal of ``type_``: a value the same for every
    group costs nothing to send (as a parameter, each would be adapted on every insert)."""
    sql = literal(value, type_).compile(compile_kwargs={"literal_binds": True})
    return literal_column(str(sql), type_)


def _insert_with_events_statement() -> Insert:
    new = RowsFrom(*map(_elements, PER_ROW)).table_valued(*PER_ROW).render_derived(name="new")
    column = GENERATIONS.c
    now = bindparam("now", type_=column.created_at.type)
    group = {
        "created_at": now,
        "updated_at": now,
        "deadline_at": bindparam("deadline_at", type_=column.deadline_at.type),
        "next_poll_at": bindparam("next_poll_at", type_=column.next_poll_at.type),
        **{
            name: _inline(value, column[name].type)
            for name, value in DEFAULTS.items()
            if name not in PER_ROW
        },
    }
    created = (
        pg_insert(GENERATIONS)
        .from_select([*PER_ROW, *group], select(*new.c, *group.values()), include_defaults=False)
        .on_conflict_do_nothing()
        .returning(column.id, column.status)
        .cte("created")
    )
    return (
        pg_insert(EVENTS)
        .from_select(
            ["generation_id", "at", "kind", "status"],
            select(
                created.c.id,
                now,
                _inline(EventKind.CREATED.value, EVENTS.c.kind.type),
                created.c.status,
            ),
        )
        .returning(EVENTS.c.generation_id)
    )


_INSERT_WITH_EVENTS = _insert_with_events_statement()
"""One group's rows and their ``created`` events in one statement, each column's values one
parameter: the same SQL text for any number of rows, so neither SQLAlchemy nor psycopg compiles
it again, and PostgreSQL runs it as a prepared statement (benchmarks/HISTORY.md compares it with
the alternatives)."""


def _insert_with_events(
    session: Session, rows: list[dict[str, Any]], now: datetime
) -> set[uuid.UUID]:
    """PostgreSQL: the rows (all sharing ``now``) and their ``created`` events in one
    statement, so one round trip writes a group, atomically even outside a transaction."""
    first = rows[0]
    params: dict[str, Any] = {name: [row[name] for row in rows] for name in PER_ROW}
    params.update(now=now, deadline_at=first["deadline_at"], next_poll_at=first["next_poll_at"])
    inserted = set(session.scalars(_INSERT_WITH_EVENTS, params).all())
    log_events(
        [row["id"] for row in rows if row["id"] in inserted],
        kind=EventKind.CREATED,
        status=GenerationStatus.PENDING,
    )
    return inserted


def _row(
    item: NewGeneration, now: datetime, deadline_seconds: float, grace_seconds: float
) -> dict[str, Any]:
    """Every value of the row to insert: what the answer to the request is built from."""
    return {
        **DEFAULTS,
        "id": uuid.uuid4(),
        "tenant_id": item.tenant_id,
        "model": item.model,
        "input": item.input,
        "created_at": now,
        "updated_at": now,
        "deadline_at": now + timedelta(seconds=item.deadline_seconds or deadline_seconds),
        "next_poll_at": now + timedelta(seconds=grace_seconds),
        "idempotency_key": item.idempotency_key,
        "request_hash": item.request_hash,
        "webhook_url": item.webhook_url,
        "priority": item.priority.rank,
        "unit_price": item.unit_price,
        "estimated_cost": item.estimated_cost,
        "copy_awaited": item.copy_awaited,
    }


def _key_holders(
    session: Session, skipped: list[dict[str, Any]]
) -> dict[tuple[uuid.UUID, str | None], tuple[uuid.UUID, str | None]]:
    keys = {(r["tenant_id"], r["idempotency_key"]) for r in skipped if r["idempotency_key"]}
    if not keys:
        return {}
    found = session.execute(
        select(
            Generation.tenant_id, Generation.idempotency_key, Generation.id, Generation.request_hash
        ).where(tuple_(Generation.tenant_id, Generation.idempotency_key).in_(sorted(keys)))
    ).all()
    return {(t, k): (i, h) for t, k, i, h in found}


class CancelRequestOutcome(StrEnum):
    """What recording a client's wish to cancel came to (:func:`request_cancel`)."""

    CANCELLED = "cancelled"
    """It had not been sent upstream: it is cancelled now."""
    REQUESTED = "requested"
    """It is upstream: a worker will ask upstream to cancel and keep polling until it settles."""
    ALREADY_REQUESTED = "already_requested"
    """A cancel had been requested before: nothing changed."""
    ALREADY_TERMINAL = "already_terminal"
    """It had ended already: nothing changed."""
    NOT_FOUND = "not_found"
    """No such generation."""


@dataclass(frozen=True)
class CancelRequestResult:
    """The outcome of :func:`request_cancel`, and the status the generation was left in."""

    outcome: CancelRequestOutcome
    status: GenerationStatus | None


def request_cancel(
    session: Session, generation_id: uuid.UUID, *, now: datetime
) -> CancelRequestResult:
    """Cancellation is state, not ``revoke``: record the wish; end it now if nothing was sent."""
    gen = session.get(Generation, generation_id, with_for_update=True, populate_existing=True)
    if gen is None:
        return CancelRequestResult(CancelRequestOutcome.NOT_FOUND, None)
    status = GenerationStatus(gen.status)
    if status in TERMINAL:
        return CancelRequestResult(CancelRequestOutcome.ALREADY_TERMINAL, status)
    if status is GenerationStatus.PENDING and transition(
        session,
        gen.id,
        to=GenerationStatus.CANCELLED,
        now=now,
        allowed_from={GenerationStatus.PENDING},
        values={"cancel_requested_at": now, "completed_at": now, "next_poll_at": None},
        event_kind=EventKind.CANCELLED,
        detail={"reason": "cancelled before it was sent upstream"},
    ):
        return CancelRequestResult(CancelRequestOutcome.CANCELLED, GenerationStatus.CANCELLED)
    if gen.cancel_requested_at is not None:
        return CancelRequestResult(CancelRequestOutcome.ALREADY_REQUESTED, status)
    if update_where(
        session,
        gen.id,
        now=now,
        statuses=LIVE,
        values={"cancel_requested_at": now, "next_poll_at": now},
        where=[GENERATIONS.c.cancel_requested_at.is_(None)],
    ):
        record_event(session, gen.id, kind=EventKind.CANCEL_REQUESTED, now=now, status=status)
        return CancelRequestResult(CancelRequestOutcome.REQUESTED, status)
    session.refresh(gen)
    return request_cancel(session, generation_id, now=now)
