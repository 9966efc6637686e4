"""A leased row as a poll sees it, and the two ways a poll lets go of it.

A poll does not write as it goes: each job's outcome is a :class:`Write`, and the batch applies
all of them in one transaction once every job of the batch has been checked upstream.
"""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from models.state import record_event, transition, update_where
from models.status import ACTIVE, GenerationStatus
from models.tables import GENERATIONS
from models.vocabulary import ErrorType, EventKind
from worker.backoff import next_error_delay
from worker.context import Observer, WorkerContext
from worker.lifecycle.errors import error_record, from_upstream
from worker.upstream import UpstreamTransient

RETRY_OPERATION = {
    EventKind.POLL_RETRY: "poll",
    EventKind.POLL_ERROR: "poll",
    EventKind.RESULT_RETRY: "result",
}


@dataclass(frozen=True)
class Snapshot:
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


@dataclass(frozen=True)
class Write:
    """What one poll decided: ``apply`` runs its guarded statements in the batch's transaction
    and says whether they won; ``outcome`` is what the batch reports for the job."""

    outcome: str
    apply: Callable[[Session], bool]
    terminal: tuple[str, datetime, datetime] | None = None
    """``observer.terminal`` arguments, reported once the write won and was committed."""

    def report(self, observer: Observer) -> None:
        if self.terminal:
            observer.terminal(*self.terminal)


def end_job(
    ctx: WorkerContext,
    snap: Snapshot,
    to: GenerationStatus,
    error: dict[str, Any] | None,
    event_kind: EventKind,
    *,
    result: Any = None,
    detail: dict[str, Any] | None = None,
    run_seconds: float | None = None,
) -> Write:
    now = ctx.clock()
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
    }
    if result is not None:
        values["result"] = result

    def apply(session: Session) -> bool:
        return transition(
            session,
            snap.id,
            to=to,
            now=now,
            allowed_from=ACTIVE,
            where=[GENERATIONS.c.lease_token == snap.token],
            values=values,
            event_kind=event_kind,
            detail=detail or ({"error_type": error["type"]} if error else None),
        )

    return Write(to.value, apply, terminal=(to.value, snap.created_at, now))


def retry_later(
    ctx: WorkerContext,
    snap: Snapshot,
    *,
    kind: EventKind,
    exc: UpstreamTransient | None = None,
    message: str | None = None,
) -> Write:
    errors = snap.error_count + 1
    if errors >= ctx.limits.max_poll_errors:
        error = (
            from_upstream(ErrorType.RETRIES_EXHAUSTED, exc)
            if exc
            else error_record(ErrorType.RETRIES_EXHAUSTED, message or "too many poll errors")
        )
        return end_job(ctx, snap, GenerationStatus.FAILED, error, EventKind.FAILED)
    ctx.observer.retry(RETRY_OPERATION.get(kind, "poll"))
    now = ctx.clock()
    delay = next_error_delay(
        errors=errors,
        retry_after=exc.retry_after if exc else None,
        policy=ctx.policy,
        rand=ctx.rand(),
    )
    detail = {
        "message": exc.message if exc else message,
        "http_status": exc.http_status if exc else None,
        "retry_after": exc.retry_after if exc else None,
        "delay": round(delay, 3),
        "errors": errors,
    }

    def apply(session: Session) -> bool:
        if not update_where(
            session,
            snap.id,
            now=now,
            statuses=ACTIVE,
            where=[GENERATIONS.c.lease_token == snap.token],
            values={
                "error_count": errors,
                "next_poll_at": now + timedelta(seconds=delay),
                "lease_token": None,
                "lease_until": None,
            },
        ):
            return False
        record_event(session, snap.id, kind=kind, now=now, detail=detail)
        return True

    return Write("retry", apply)
