"""The beat tick: the database is the timer. Claim what is due, publish it, in batches."""

import uuid
from datetime import timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from models import tasknames
from models.status import ACTIVE, LIVE, GenerationStatus
from models.tables import Generation
from worker.context import WorkerContext

SUBMIT_TASK = tasknames.SUBMIT_MANY
POLL_TASK = tasknames.POLL_BATCH


def dispatch_due(ctx: WorkerContext) -> dict[str, int]:
    """Publish ``generation.submit_many`` for due pending rows (``submit_batch_size`` ids a
    message) and ``generation.poll_batch`` for due active rows. Rows are claimed with ``FOR
    UPDATE SKIP LOCKED`` (Postgres) and a lease, so two beats never dispatch the same row; a
    lost message costs one lease, never the job."""
    submits = _claim_pending(ctx)
    size = ctx.limits.submit_batch_size
    for start in range(0, len(submits), size):
        ctx.publish(SUBMIT_TASK, [[str(i) for i in submits[start : start + size]]])
    batches = _claim_active(ctx)
    for token, ids in batches:
        ctx.publish(POLL_TASK, [[str(i) for i in ids], token])
    return {"submits": len(submits), "polls": sum(len(ids) for _, ids in batches)}


def _claim_pending(ctx: WorkerContext) -> list[uuid.UUID]:
    """Due pending rows to publish. Under the global cap, only as many as there are free
    slots: the claim picks the next jobs by the fair order from every pending row, so a
    message is only a wake-up, and publishing every waiting row each tick only had each
    message's claim take the cap lock to defer its rows (B5, benchmarks/HISTORY.md). The rows
    left out stay due and are looked at again next tick."""
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        limit = ctx.limits.dispatch_limit
        if ctx.limits.max_in_flight:
            limit = min(limit, ctx.limits.max_in_flight - _live(session))
            if limit <= 0:
                return []
        ids = list(
            session.scalars(
                select(Generation.id)
                .where(
                    Generation.status == GenerationStatus.PENDING.value,
                    Generation.next_poll_at <= now,
                )
                .order_by(Generation.next_poll_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            ).all()
        )
        if ids:
            # The submit task may itself be lost: look again after the grace period.
            session.execute(
                update(Generation)
                .where(Generation.id.in_(ids))
                .values(next_poll_at=now + timedelta(seconds=ctx.limits.submit_grace))
                .execution_options(synchronize_session=False)
            )
    return ids


def _live(session: Session) -> int:
    """Rows live upstream now (a hint for how many wake-ups to send; the claim enforces)."""
    live = session.scalar(
        select(func.count())
        .select_from(Generation)
        .where(Generation.status.in_([s.value for s in LIVE]))
    )
    return int(live or 0)


def _claim_active(ctx: WorkerContext) -> list[tuple[str, list[uuid.UUID]]]:
    now = ctx.clock()
    lease_until = now + timedelta(seconds=ctx.limits.lease_seconds)
    batches: list[tuple[str, list[uuid.UUID]]] = []
    with ctx.sessions.begin() as session:
        ids = list(
            session.scalars(
                select(Generation.id)
                .where(
                    Generation.status.in_([s.value for s in ACTIVE]),
                    Generation.next_poll_at <= now,
                    or_(Generation.lease_until.is_(None), Generation.lease_until < now),
                )
                .order_by(Generation.next_poll_at)
                .limit(ctx.limits.dispatch_limit)
                .with_for_update(skip_locked=True)
            ).all()
        )
        size = ctx.limits.poll_batch_size
        for start in range(0, len(ids), size):
            chunk = ids[start : start + size]
            token = str(uuid.uuid4())
            session.execute(
                update(Generation)
                .where(Generation.id.in_(chunk))
                .values(lease_token=token, lease_until=lease_until)
                .execution_options(synchronize_session=False)
            )
            batches.append((token, chunk))
    return batches
