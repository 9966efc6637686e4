"""The safety net: whatever the broker or a dead worker lost, every row still reaches an end."""

import logging
from datetime import timedelta

from sqlalchemy import select, update

from models.status import ACTIVE, GenerationStatus
from models.tables import Generation
from worker.context import WorkerContext
from worker.lifecycle.retention import sweep_expired
from worker.lifecycle.submit_outcome import (
    Recorded,
    SubmitResult,
    fail_unsent_past_deadline,
    resolve_ambiguous,
)

log = logging.getLogger(__name__)
BATCH = 500


def reconcile(ctx: WorkerContext) -> dict[str, int]:
    """Resolve submits whose worker vanished, end rows past their deadline, wake rows whose
    timer or cancel was lost, and delete what retention says is gone. Active rows with an
    expired lease need nothing here: the dispatcher claims them again on its next tick."""
    return {
        "lost_submits": _lost_submits(ctx),
        "expired_pending": _expired_pending(ctx),
        "woken": _wake_overdue(ctx),
        "swept": sweep_expired(ctx),
    }


def _lost_submits(ctx: WorkerContext) -> int:
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        rows = session.execute(
            select(
                Generation.id,
                Generation.lease_token,
                Generation.submit_attempts,
                Generation.created_at,
            )
            .where(
                Generation.status == GenerationStatus.SUBMITTING.value, Generation.lease_until < now
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        recorded = []
        for gen_id, token, attempts, created_at in rows:
            log.warning("generation %s: submit worker lost; outcome unknown", gen_id)
            result = resolve_ambiguous(
                ctx,
                session,
                gen_id,
                token=token,
                attempts=attempts,
                now=now,
                reason="worker lost during submit (lease expired); upstream may have the job",
            )
            ended = (created_at, now) if result is SubmitResult.FAILED else None
            recorded.append(Recorded(result, ended=ended))
    for outcome in recorded:  # committed: now the observer may hear of them
        outcome.report(ctx.observer)
    return len(rows)


def _expired_pending(ctx: WorkerContext) -> int:
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        rows = session.scalars(
            select(Generation)
            .where(
                Generation.status == GenerationStatus.PENDING.value, Generation.deadline_at <= now
            )
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        ended = [gen.created_at for gen in rows if fail_unsent_past_deadline(session, gen, now=now)]
    for created_at in ended:
        ctx.observer.terminal(GenerationStatus.FAILED.value, created_at, now)
    return len(ended)


def _wake_overdue(ctx: WorkerContext) -> int:
    """Active rows past their deadline, or whose cancel a client asked for, are polled at once
    while their upstream cancel is unsent: the poll asks upstream first, then cancels (and a
    job upstream finished is fetched). Once the cancel is sent they keep their own timer."""
    now = ctx.clock()
    soon = now + timedelta(seconds=1)
    with ctx.sessions.begin() as session:
        result = session.execute(
            update(Generation)
            .where(
                Generation.status.in_([s.value for s in ACTIVE]),
                Generation.next_poll_at > soon,
                Generation.cancel_sent_at.is_(None),
                (Generation.deadline_at <= now) | Generation.cancel_requested_at.is_not(None),
            )
            .values(next_poll_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]
