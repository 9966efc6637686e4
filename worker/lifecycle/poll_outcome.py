"""What a poll's answer becomes, as data, and the one function that writes it.

A poll writes nothing as it goes. Each leased row's check ends in a :class:`PollOutcome`: the
status to move to (or none), the statuses it may move from, the column values, the event, and
what the observer hears once it is committed. The functions below build them (``progress``,
``end``, ``fail``, ``retry_later``); :func:`apply_outcome` writes one in the batch's
transaction, guarded by the row's lease token, so a row another poller took meanwhile is left
alone.
"""

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import literal
from sqlalchemy.orm import Session

from models.history import record_queue_position
from models.media import media_status_for
from models.state import record_event, transition, update_where
from models.status import ACTIVE, TERMINAL, GenerationStatus
from models.tables import GENERATIONS
from models.vocabulary import ErrorType, EventKind
from worker.backoff import (
    RunTimeEstimate,
    next_error_delay,
    next_poll_delay,
    safety_net_delay,
)
from worker.context import Observer, WorkerContext
from worker.lifecycle.errors import error_record, from_upstream
from worker.upstream import (
    QueueState,
    StatusReport,
    UpstreamTransient,
)

log = logging.getLogger(__name__)
RETRY_OPERATION = {
    EventKind.POLL_RETRY: "poll",
    EventKind.POLL_ERROR: "poll",
    EventKind.RESULT_RETRY: "result",
}


@dataclass(frozen=True)
class LeasedRow:
    """A row the poll batch holds the lease of (``token``), as the claim read it."""

    id: uuid.UUID
    model: str
    status: GenerationStatus
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: int | None
    poll_count: int
    error_count: int
    submitted_at: datetime
    deadline_at: datetime
    cancel_requested_at: datetime | None
    cancel_sent_at: datetime | None
    last_polled_at: datetime | None
    created_at: datetime
    token: str
    expects_webhook: bool = False


@dataclass(frozen=True)
class PollOutcome:
    """What one row's poll decided, written by :func:`apply_outcome`."""

    row: LeasedRow
    at: datetime
    label: str
    """What the batch counts it as: the status it ends in, or ``retry``."""
    allowed_from: frozenset[GenerationStatus]
    values: Mapping[str, Any]
    """Column values; the lease is always released."""
    to: GenerationStatus | None = None
    """The status to move to; None: the columns change, the status stays."""
    event: EventKind | None = None
    """The event written when the write wins (with ``to``, its status is ``to``)."""
    event_status: GenerationStatus | None = None
    """The event's status when the status stays."""
    queue_position: int | None = None
    detail: Mapping[str, Any] | None = None
    retried: str | None = None
    """The operation the observer hears was retried (``poll``, ``result``)."""
    forced: bool = False
    """genqueue ends the job for a reason of its own (its polls kept failing), not because
    upstream said so: ``give_up`` cancels upstream before it is written."""

    def report(self, observer: Observer) -> None:
        """Tell the observer, once the write won and was committed."""
        if self.retried:
            observer.retry(self.retried)
        if self.to in TERMINAL:
            observer.terminal(self.to.value, self.row.created_at, self.at)


def apply_outcome(session: Session, outcome: PollOutcome) -> bool:
    """Write ``outcome`` in the caller's transaction; return whether it won (the row was still
    in an allowed status and under our lease)."""
    row = outcome.row
    guard = [GENERATIONS.c.lease_token == row.token]
    if outcome.to is not None:
        return transition(
            session,
            row.id,
            to=outcome.to,
            now=outcome.at,
            allowed_from=outcome.allowed_from,
            where=guard,
            values=outcome.values,
            event_kind=outcome.event or EventKind.STATUS,
            detail=outcome.detail,
            queue_position=outcome.queue_position,
        )
    statuses = outcome.allowed_from
    if not update_where(
        session, row.id, now=outcome.at, statuses=statuses, values=outcome.values, where=guard
    ):
        return False
    if outcome.event is EventKind.QUEUE_POSITION and outcome.queue_position is not None:
        record_queue_position(
            session,
            row.id,
            position=outcome.queue_position,
            now=outcome.at,
            status=outcome.event_status,
        )
    elif outcome.event is not None:
        record_event(
            session,
            row.id,
            kind=outcome.event,
            now=outcome.at,
            status=outcome.event_status,
            queue_position=outcome.queue_position,
            detail=outcome.detail,
        )
    return True


def progress(
    ctx: WorkerContext, row: LeasedRow, report: StatusReport, estimate: RunTimeEstimate | None
) -> PollOutcome:
    """Upstream says the job is still queued or running: record what changed, and when to look
    again."""
    now = ctx.clock()
    queued = report.state is QueueState.IN_QUEUE
    state = GenerationStatus.QUEUED if queued else GenerationStatus.RUNNING
    position = report.queue_position if queued else None
    age = (now - row.submitted_at).total_seconds()
    prior = ctx.expected_run_seconds(row.model)
    if row.expects_webhook:
        delay = safety_net_delay(
            age=age, policy=ctx.policy, rand=ctx.rand(), estimate=estimate, prior=prior
        )
    else:
        delay = next_poll_delay(
            attempt=row.poll_count + 1,
            state=state,
            queue_position=position,
            age=age,
            policy=ctx.policy,
            rand=ctx.rand(),
            estimate=estimate,
            prior=prior,
        )
    values: dict[str, Any] = {
        "queue_position": position,
        "poll_count": GENERATIONS.c.poll_count + 1,
        "last_polled_at": now,
        "error_count": 0,
        "next_poll_at": now + timedelta(seconds=delay),
        "lease_token": None,
        "lease_until": None,
    }
    if state is not row.status:
        if state is GenerationStatus.RUNNING:
            values["started_at"] = now
        return PollOutcome(
            row,
            now,
            state.value,
            frozenset({row.status}),
            values,
            to=state,
            event=EventKind.STATUS,
            queue_position=position,
        )
    moved = position is not None and position != row.queue_position
    return PollOutcome(
        row,
        now,
        state.value,
        frozenset({state}),
        values,
        event=EventKind.QUEUE_POSITION if moved else None,
        event_status=state,
        queue_position=position,
    )


def look_again_soon(ctx: WorkerContext, outcome: PollOutcome) -> PollOutcome:
    """``outcome`` (the job goes on), with its next poll as soon as the policy allows."""
    soon = outcome.at + timedelta(seconds=ctx.policy.min_delay)
    return replace(outcome, values={**outcome.values, "next_poll_at": soon})


def retry_later(
    ctx: WorkerContext,
    row: LeasedRow,
    kind: EventKind,
    *,
    exc: UpstreamTransient | None = None,
    message: str | None = None,
) -> PollOutcome:
    """A transient failure: look again after the error backoff, or fail the job once
    ``max_poll_errors`` polls in a row have failed."""
    errors = row.error_count + 1
    if errors >= ctx.limits.max_poll_errors:
        error = (
            from_upstream(ErrorType.RETRIES_EXHAUSTED, exc)
            if exc
            else error_record(ErrorType.RETRIES_EXHAUSTED, message or "too many poll errors")
        )
        return replace(fail(ctx, row, error), forced=True)
    now = ctx.clock()
    delay = next_error_delay(
        errors=errors,
        retry_after=exc.retry_after if exc else None,
        policy=ctx.policy,
        rand=ctx.rand(),
    )
    values = {
        "error_count": errors,
        "next_poll_at": now + timedelta(seconds=delay),
        "lease_token": None,
        "lease_until": None,
    }
    detail = {
        "message": exc.message if exc else message,
        "http_status": exc.http_status if exc else None,
        "retry_after": exc.retry_after if exc else None,
        "delay": round(delay, 3),
        "errors": errors,
    }
    return PollOutcome(
        row, now, "retry", ACTIVE, values, event=kind, detail=detail, retried=RETRY_OPERATION[kind]
    )


def fail(
    ctx: WorkerContext,
    row: LeasedRow,
    error: dict[str, Any],
    *,
    event: EventKind = EventKind.FAILED,
    detail: dict[str, Any] | None = None,
    run_seconds: float | None = None,
    billable_units: float | None = None,
) -> PollOutcome:
    return end(
        ctx,
        row,
        GenerationStatus.FAILED,
        event,
        error,
        detail=detail,
        run_seconds=run_seconds,
        billable_units=billable_units,
    )


def end(
    ctx: WorkerContext,
    row: LeasedRow,
    to: GenerationStatus,
    event: EventKind,
    error: dict[str, Any] | None,
    *,
    result: Any = None,
    detail: dict[str, Any] | None = None,
    run_seconds: float | None = None,
    billable_units: float | None = None,
) -> PollOutcome:
    """The job ends in ``to``; its final cost is upstream's ``billable_units`` at its unit
    price, else its estimate when it completed and nothing when it did not."""
    now = ctx.clock()
    column = GENERATIONS.c
    if billable_units is not None:
        final_cost: Any = literal(billable_units) * column.unit_price
    elif to is GenerationStatus.COMPLETED:
        final_cost = column.estimated_cost
    else:
        final_cost = literal(0.0)
    values: dict[str, Any] = {
        "last_polled_at": now,
        "run_seconds": run_seconds,
        "error_count": 0,
        "completed_at": now,
        "next_poll_at": None,
        "lease_token": None,
        "lease_until": None,
        "queue_position": None,
        "error": error,
        "poll_count": GENERATIONS.c.poll_count + 1,
        "billable_units": billable_units,
        "final_cost": final_cost,
    }
    if result is not None:
        values["result"] = result
        # the media tick copies the files it references (models/media.py)
        values["media_status"] = media_status_for(result)
    detail = detail or ({"error_type": error["type"]} if error else None)
    return PollOutcome(row, now, to.value, ACTIVE, values, to=to, event=event, detail=detail)
