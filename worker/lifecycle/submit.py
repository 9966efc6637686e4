"""Send one pending generation upstream, exactly once where the upstream lets us know.

Ambiguous-submit policy: fal has no idempotency key, so a submit whose answer never arrived
(read timeout, connection dropped after the request was written, a worker killed mid-call) may or
may not have created an upstream job. genqueue records an event of kind ``submit_ambiguous`` and
then, by default (``GENQUEUE_AMBIGUOUS_SUBMIT=resubmit``), submits again: a job that may run twice
beats a job that is silently lost. With ``fail`` the job ends ``failed`` with error type
``submit_ambiguous`` instead, and is never sent twice.
"""

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.state import record_event, transition, update_where
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation
from worker.backoff import next_error_delay, next_poll_delay
from worker.context import WorkerContext
from worker.lifecycle.errors import error_record, from_upstream
from worker.upstream import SubmitAmbiguous, SubmitHandle, UpstreamRejected, UpstreamTransient

log = logging.getLogger(__name__)
S = GenerationStatus
LIVE = (S.SUBMITTING, S.QUEUED, S.RUNNING)


class SubmitResult(StrEnum):
    SUBMITTED = "submitted"
    SKIPPED = "skipped"
    DEFERRED = "deferred"
    RETRY = "retry"
    AMBIGUOUS = "ambiguous"
    FAILED = "failed"


@dataclass(frozen=True)
class _Claim:
    model: str
    input: dict[str, Any]
    token: str
    attempts: int
    created_at: datetime


def submit_generation(ctx: WorkerContext, generation_id: uuid.UUID) -> SubmitResult:
    outcome = _submit(ctx, generation_id)
    ctx.observer.submit_outcome(outcome.value)
    return outcome


def _submit(ctx: WorkerContext, generation_id: uuid.UUID) -> SubmitResult:
    claim = _claim(ctx, generation_id)
    if isinstance(claim, SubmitResult):
        return claim
    try:
        handle = ctx.client.submit(claim.model, claim.input, start_timeout=ctx.limits.start_timeout)
    except UpstreamRejected as exc:
        return _fail(ctx, generation_id, claim, from_upstream("upstream_rejected", exc))
    except SubmitAmbiguous as exc:
        return _ambiguous(ctx, generation_id, claim, reason=exc.message)
    except UpstreamTransient as exc:
        return _retry(ctx, generation_id, claim, exc)
    except Exception as exc:  # an unknown failure after the call started is ambiguous too
        log.exception("submit of %s raised unexpectedly", generation_id)
        return _ambiguous(ctx, generation_id, claim, reason=f"{type(exc).__name__} during submit")
    return _accepted(ctx, generation_id, claim, handle)


def _claim(ctx: WorkerContext, generation_id: uuid.UUID) -> _Claim | SubmitResult:
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        gen = session.get(Generation, generation_id)
        if gen is None or gen.status != S.PENDING:
            return SubmitResult.SKIPPED
        if now >= gen.deadline_at:
            if fail_unsent_past_deadline(session, gen, now=now):
                ctx.observer.terminal(S.FAILED.value, gen.created_at, now)
            return SubmitResult.FAILED
        if ctx.limits.max_in_flight and _in_flight(session) >= ctx.limits.max_in_flight:
            update_where(
                session,
                gen.id,
                now=now,
                statuses={S.PENDING},
                values={"next_poll_at": now + timedelta(seconds=1)},
            )
            return SubmitResult.DEFERRED
        token = str(uuid.uuid4())
        won = transition(
            session,
            gen.id,
            to=S.SUBMITTING,
            now=now,
            allowed_from={S.PENDING},
            values={
                "submit_attempts": Generation.submit_attempts + 1,
                "lease_token": token,
                "lease_until": now + timedelta(seconds=ctx.limits.lease_seconds),
                "next_poll_at": None,
            },
            detail={"attempt": gen.submit_attempts + 1},
        )
        if not won:
            return SubmitResult.SKIPPED
        return _Claim(gen.model, dict(gen.input), token, gen.submit_attempts + 1, gen.created_at)


def _in_flight(session: Session) -> int:
    query = (
        select(func.count())
        .select_from(Generation)
        .where(Generation.status.in_([s.value for s in LIVE]))
    )
    return int(session.scalar(query) or 0)


def _accepted(
    ctx: WorkerContext, generation_id: uuid.UUID, claim: _Claim, handle: SubmitHandle
) -> SubmitResult:
    now = ctx.clock()
    delay = next_poll_delay(
        attempt=0,
        state=S.QUEUED,
        queue_position=handle.queue_position,
        age=0.0,
        policy=ctx.policy,
        rand=ctx.rand(),
    )
    with ctx.sessions.begin() as session:
        won = transition(
            session,
            generation_id,
            to=S.QUEUED,
            now=now,
            allowed_from={S.SUBMITTING},
            where=[Generation.lease_token == claim.token],
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
            },
            event_kind="submitted",
            queue_position=handle.queue_position,
            detail={"request_id": handle.request_id, "attempt": claim.attempts},
        )
        if won:
            log.info("generation %s submitted as upstream %s", generation_id, handle.request_id)
            return SubmitResult.SUBMITTED
        # Our lease ran out and the reconciler took the row back: do not leave a paid job behind
        # unrecorded. Record it, then ask upstream to drop it.
        record_event(
            session,
            generation_id,
            kind="submit_orphaned",
            now=now,
            detail={"request_id": handle.request_id, "reason": "lease lost before the answer"},
        )
    try:
        ctx.client.cancel(handle.cancel_url)
    except Exception:
        log.warning("could not cancel orphaned upstream request %s", handle.request_id)
    return SubmitResult.SKIPPED


def _release(
    ctx: WorkerContext,
    generation_id: uuid.UUID,
    claim: _Claim,
    *,
    to: GenerationStatus,
    values: dict[str, Any],
    event_kind: str,
    detail: dict[str, Any],
    now: datetime,
) -> bool:
    with ctx.sessions.begin() as session:
        won = transition(
            session,
            generation_id,
            to=to,
            now=now,
            allowed_from={S.SUBMITTING},
            where=[Generation.lease_token == claim.token],
            values={"lease_token": None, "lease_until": None, **values},
            event_kind=event_kind,
            detail=detail,
        )
    if won and to in TERMINAL:
        ctx.observer.terminal(to.value, claim.created_at, now)
    return won


def _fail(
    ctx: WorkerContext, generation_id: uuid.UUID, claim: _Claim, error: dict[str, Any]
) -> SubmitResult:
    now = ctx.clock()
    _release(
        ctx,
        generation_id,
        claim,
        to=S.FAILED,
        now=now,
        values={"error": error, "completed_at": now, "next_poll_at": None},
        event_kind="failed",
        detail={"error_type": error["type"], "http_status": error["http_status"]},
    )
    return SubmitResult.FAILED


def _retry(
    ctx: WorkerContext, generation_id: uuid.UUID, claim: _Claim, exc: UpstreamTransient
) -> SubmitResult:
    """Upstream answered "not now" (429, 5xx) or could not be reached: nothing was accepted,
    so trying again costs nothing. It goes on until the job's deadline; the last error is kept
    on the row so a client can see why its job is still pending."""
    ctx.observer.retry("submit")
    now = ctx.clock()
    delay = next_error_delay(
        errors=claim.attempts, retry_after=exc.retry_after, policy=ctx.policy, rand=ctx.rand()
    )
    _release(
        ctx,
        generation_id,
        claim,
        to=S.PENDING,
        now=now,
        values={
            "next_poll_at": now + timedelta(seconds=delay),
            "error": from_upstream("upstream_unavailable", exc),
        },
        event_kind="submit_retry",
        detail={
            "http_status": exc.http_status,
            "message": exc.message,
            "retry_after": exc.retry_after,
            "delay": round(delay, 3),
        },
    )
    return SubmitResult.RETRY


def fail_unsent_past_deadline(session: Session, gen: Generation, *, now: datetime) -> bool:
    """End a pending row whose deadline passed before any submit was accepted."""
    message = "the job's deadline passed before upstream accepted it"
    if gen.error:
        message += f"; last upstream error: {gen.error.get('message')}"
    previous = gen.error or {}
    return transition(
        session,
        gen.id,
        to=S.FAILED,
        now=now,
        allowed_from={S.PENDING},
        values={
            "completed_at": now,
            "next_poll_at": None,
            "error": error_record(
                "deadline_exceeded",
                message,
                http_status=previous.get("http_status"),
                body=previous.get("body"),
                error_type=previous.get("error_type"),
            ),
        },
        event_kind="deadline_exceeded",
    )


def _ambiguous(
    ctx: WorkerContext, generation_id: uuid.UUID, claim: _Claim, *, reason: str
) -> SubmitResult:
    with ctx.sessions.begin() as session:
        return resolve_ambiguous(
            ctx,
            session,
            generation_id,
            token=claim.token,
            attempts=claim.attempts,
            created_at=claim.created_at,
            now=ctx.clock(),
            reason=reason,
        )


def resolve_ambiguous(
    ctx: WorkerContext,
    session: Session,
    generation_id: uuid.UUID,
    *,
    token: str | None,
    attempts: int,
    created_at: datetime,
    now: datetime,
    reason: str,
) -> SubmitResult:
    """Apply the ambiguous-submit policy (module docstring) to a row in ``submitting``."""
    resubmit = (
        ctx.limits.ambiguous_submit == "resubmit" and attempts < ctx.limits.max_submit_attempts
    )
    detail = {"reason": reason, "attempt": attempts, "policy": "resubmit" if resubmit else "fail"}
    common: dict[str, Any] = {"lease_token": None, "lease_until": None}
    guard = [Generation.lease_token == token] if token else [Generation.lease_token.is_(None)]
    if resubmit:
        delay = next_error_delay(
            errors=attempts, retry_after=None, policy=ctx.policy, rand=ctx.rand()
        )
        values = {**common, "next_poll_at": now + timedelta(seconds=delay)}
        to, result = S.PENDING, SubmitResult.AMBIGUOUS
    else:
        error = error_record("submit_ambiguous", reason)
        values = {**common, "completed_at": now, "next_poll_at": None, "error": error}
        to, result = S.FAILED, SubmitResult.FAILED
    won = transition(
        session,
        generation_id,
        to=to,
        now=now,
        allowed_from={S.SUBMITTING},
        where=guard,
        values=values,
        event_kind="submit_ambiguous",
        detail=detail,
    )
    if won and to is S.FAILED:
        ctx.observer.terminal(to.value, created_at, now)
    return result if won else SubmitResult.SKIPPED
