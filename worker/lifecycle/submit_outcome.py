"""What a submit's answer means for its row, written in the caller's transaction.

Ambiguous-submit policy: fal has no idempotency key, so a submit whose answer never arrived
(read timeout, connection dropped after the request was written, a worker killed mid-call) may or
may not have created an upstream job. genqueue records an event of kind ``submit_ambiguous`` and
then, by default (``GENQUEUE_AMBIGUOUS_SUBMIT=resubmit``), submits again: a job that may run twice
beats a job that is silently lost. With ``fail`` the job ends ``failed`` with error type
``submit_ambiguous`` instead, and is never sent twice.

Every write here is guarded by the claim's lease token: if the reconciler took the row back
meanwhile, ours loses. ``submit_batch`` claims, calls upstream and commits; this module only
says what each answer becomes.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from models.priority import Priority
from models.state import record_event, transition
from models.status import GenerationStatus
from models.tables import GENERATIONS, Generation
from models.vocabulary import ErrorType, EventKind
from worker.backoff import RunTimeEstimate, next_error_delay, next_poll_delay, safety_net_delay
from worker.context import Observer, WorkerContext
from worker.lifecycle.errors import error_record, from_upstream
from worker.lifecycle.estimates import estimates_for
from worker.upstream import SubmitAmbiguous, SubmitHandle, UpstreamRejected, UpstreamTransient

log = logging.getLogger(__name__)


class SubmitResult(StrEnum):
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    RETRY = "retry"
    AMBIGUOUS = "ambiguous"
    FAILED = "failed"


@dataclass(frozen=True)
class Claim:
    """A row moved to ``submitting`` under ``token``: what its submit needs."""

    id: uuid.UUID
    model: str
    input: dict[str, Any]
    token: str
    attempts: int
    created_at: datetime
    tenant: str = ""
    """The tenant's name, sent upstream as the ``tenant`` tag."""
    priority: Priority = Priority.NORMAL


@dataclass(frozen=True)
class Answer:
    """What one submit call came back with (a handle or the exception it raised), and when."""

    claim: Claim
    outcome: SubmitHandle | Exception
    at: datetime
    webhook: bool = False
    """The submit carried ``?fal_webhook=``: the job expects fal's webhook."""
    estimate: RunTimeEstimate | None = None
    """The model's run times, when the job expects a webhook (its first poll waits for them)."""


@dataclass(frozen=True)
class Recorded:
    """A row's outcome, and what the observer hears about it once the transaction commits."""

    result: SubmitResult
    retried: bool = False
    ended: tuple[datetime, datetime] | None = None
    """(created_at, now) when the row reached ``failed``."""
    orphan: SubmitHandle | None = None
    """Accepted upstream after our lease was lost: cancel it once the event is committed."""

    def report(self, observer: Observer) -> None:
        if self.retried:
            observer.retry("submit")
        if self.ended:
            observer.terminal(GenerationStatus.FAILED.value, *self.ended)
        observer.submit_outcome(self.result.value)


def record_answer(ctx: WorkerContext, session: Session, answer: Answer) -> Recorded:
    """Branch on what the call returned or raised, as UPSTREAM.md classifies submits."""
    claim, outcome, now = answer.claim, answer.outcome, answer.at
    if isinstance(outcome, SubmitHandle):
        return _accepted(ctx, session, answer, outcome, now=now)
    if isinstance(outcome, UpstreamRejected):
        return _fail(session, claim, from_upstream(ErrorType.UPSTREAM_REJECTED, outcome), now=now)
    if isinstance(outcome, SubmitAmbiguous):
        return _ambiguous(ctx, session, claim, reason=outcome.message, now=now)
    if isinstance(outcome, UpstreamTransient):
        return _retry(ctx, session, claim, outcome, now=now)
    # An unknown failure after the call started is ambiguous too.
    log.error("submit of %s raised unexpectedly", claim.id, exc_info=outcome)
    reason = f"{type(outcome).__name__} during submit"
    return _ambiguous(ctx, session, claim, reason=reason, now=now)


def _accepted(
    ctx: WorkerContext, session: Session, answer: Answer, handle: SubmitHandle, *, now: datetime
) -> Recorded:
    claim = answer.claim
    if answer.webhook:
        delay = safety_net_delay(
            age=0.0,
            policy=ctx.policy,
            rand=ctx.rand(),
            estimate=answer.estimate,
            prior=ctx.expected_run_seconds(claim.model),
        )
    else:
        delay = next_poll_delay(
            attempt=0,
            state=GenerationStatus.QUEUED,
            queue_position=handle.queue_position,
            age=0.0,
            policy=ctx.policy,
            rand=ctx.rand(),
            # read here, in the write-back, so it never delays the submit itself
            estimate=estimates_for(ctx, {claim.model}, session=session).get(claim.model),
            prior=ctx.expected_run_seconds(claim.model),
        )
    won = transition(
        session,
        claim.id,
        to=GenerationStatus.QUEUED,
        now=now,
        allowed_from={GenerationStatus.SUBMITTING},
        where=[GENERATIONS.c.lease_token == claim.token],
        values={
            "upstream_request_id": handle.request_id,
            "status_url": handle.status_url,
            "response_url": handle.response_url,
            "cancel_url": handle.cancel_url,
            "queue_position": handle.queue_position,
            "submitted_at": now,
            "next_poll_at": now + timedelta(seconds=delay),
            "lease_token": None,
            "lease_until": None,
            "error": None,
            "expects_webhook": answer.webhook,
        },
        event_kind=EventKind.SUBMITTED,
        queue_position=handle.queue_position,
        detail={
            "request_id": handle.request_id,
            "attempt": claim.attempts,
            **({"webhook": True} if answer.webhook else {}),
        },
    )
    if won:
        log.info("generation %s submitted as upstream %s", claim.id, handle.request_id)
        return Recorded(SubmitResult.SUBMITTED)
    # Our lease ran out and the reconciler took the row back: do not leave a paid job behind
    # unrecorded. Record it; the caller asks upstream to drop it after the commit.
    record_event(
        session,
        claim.id,
        kind=EventKind.SUBMIT_ORPHANED,
        now=now,
        detail={"request_id": handle.request_id, "reason": "lease lost before the answer"},
    )
    return Recorded(SubmitResult.SKIPPED, orphan=handle)


def _release(
    session: Session,
    claim: Claim,
    *,
    to: GenerationStatus,
    values: dict[str, Any],
    event_kind: EventKind,
    detail: dict[str, Any],
    now: datetime,
) -> bool:
    return transition(
        session,
        claim.id,
        to=to,
        now=now,
        allowed_from={GenerationStatus.SUBMITTING},
        where=[GENERATIONS.c.lease_token == claim.token],
        values={"lease_token": None, "lease_until": None, **values},
        event_kind=event_kind,
        detail=detail,
    )


def _fail(session: Session, claim: Claim, error: dict[str, Any], *, now: datetime) -> Recorded:
    won = _release(
        session,
        claim,
        to=GenerationStatus.FAILED,
        now=now,
        values={"error": error, "completed_at": now, "next_poll_at": None},
        event_kind=EventKind.FAILED,
        detail={"error_type": error["type"], "http_status": error["http_status"]},
    )
    return Recorded(SubmitResult.FAILED, ended=(claim.created_at, now) if won else None)


def _retry(
    ctx: WorkerContext, session: Session, claim: Claim, exc: UpstreamTransient, *, now: datetime
) -> Recorded:
    """Upstream answered "not now" (429, 5xx) or could not be reached: nothing was accepted,
    so trying again costs nothing. It goes on until the job's deadline; the last error is kept
    on the row so a client can see why its job is still pending."""
    delay = next_error_delay(
        errors=claim.attempts, retry_after=exc.retry_after, policy=ctx.policy, rand=ctx.rand()
    )
    _release(
        session,
        claim,
        to=GenerationStatus.PENDING,
        now=now,
        values={
            "next_poll_at": now + timedelta(seconds=delay),
            "retry_at": now + timedelta(seconds=delay),
            "error": from_upstream(ErrorType.UPSTREAM_UNAVAILABLE, exc),
        },
        event_kind=EventKind.SUBMIT_RETRY,
        detail={
            "http_status": exc.http_status,
            "message": exc.message,
            "retry_after": exc.retry_after,
            "delay": round(delay, 3),
        },
    )
    return Recorded(SubmitResult.RETRY, retried=True)


def _ambiguous(
    ctx: WorkerContext, session: Session, claim: Claim, *, reason: str, now: datetime
) -> Recorded:
    result = resolve_ambiguous(
        ctx,
        session,
        claim.id,
        token=claim.token,
        attempts=claim.attempts,
        now=now,
        reason=reason,
    )
    ended = (claim.created_at, now) if result is SubmitResult.FAILED else None
    return Recorded(result, ended=ended)


def fail_unsent_past_deadline(session: Session, gen: Generation, *, now: datetime) -> bool:
    """End a pending row whose deadline passed before any submit was accepted."""
    message = "the job's deadline passed before upstream accepted it"
    if gen.error:
        message += f"; last upstream error: {gen.error.get('message')}"
    previous = gen.error or {}
    return transition(
        session,
        gen.id,
        to=GenerationStatus.FAILED,
        now=now,
        allowed_from={GenerationStatus.PENDING},
        values={
            "completed_at": now,
            "next_poll_at": None,
            "error": error_record(
                ErrorType.DEADLINE_EXCEEDED,
                message,
                http_status=previous.get("http_status"),
                body=previous.get("body"),
                error_type=previous.get("error_type"),
            ),
        },
        event_kind=EventKind.DEADLINE_EXCEEDED,
    )


def resolve_ambiguous(
    ctx: WorkerContext,
    session: Session,
    generation_id: uuid.UUID,
    *,
    token: str | None,
    attempts: int,
    now: datetime,
    reason: str,
) -> SubmitResult:
    """Apply the ambiguous-submit policy (module docstring) to a row in ``submitting``.

    ``FAILED`` means this call ended the row (the caller reports it as terminal); ``SKIPPED``
    means the lease was no longer ``token``'s."""
    resubmit = (
        ctx.limits.ambiguous_submit == "resubmit" and attempts < ctx.limits.max_submit_attempts
    )
    detail = {"reason": reason, "attempt": attempts, "policy": "resubmit" if resubmit else "fail"}
    common: dict[str, Any] = {"lease_token": None, "lease_until": None}
    guard = [GENERATIONS.c.lease_token == token] if token else [GENERATIONS.c.lease_token.is_(None)]
    if resubmit:
        delay = next_error_delay(
            errors=attempts, retry_after=None, policy=ctx.policy, rand=ctx.rand()
        )
        retry_at = now + timedelta(seconds=delay)
        values = {**common, "next_poll_at": retry_at, "retry_at": retry_at}
        to, result = GenerationStatus.PENDING, SubmitResult.AMBIGUOUS
    else:
        error = error_record(ErrorType.SUBMIT_AMBIGUOUS, reason)
        values = {**common, "completed_at": now, "next_poll_at": None, "error": error}
        to, result = GenerationStatus.FAILED, SubmitResult.FAILED
    won = transition(
        session,
        generation_id,
        to=to,
        now=now,
        allowed_from={GenerationStatus.SUBMITTING},
        where=guard,
        values=values,
        event_kind=EventKind.SUBMIT_AMBIGUOUS,
        detail=detail,
    )
    return result if won else SubmitResult.SKIPPED
