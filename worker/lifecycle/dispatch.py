"""The beat tick: the database is the timer. Claim what is due, publish it, in batches."""

import uuid
from datetime import timedelta

from sqlalchemy import or_, select, update

from models import tasknames
from models.status import ACTIVE, GenerationStatus
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
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        ids = list(
            session.scalars(
                select(Generation.id)
                .where(
                    Generation.status == GenerationStatus.PENDING.value,
                    Generation.next_poll_at <= now,
                )
                .order_by(Generation.next_poll_at)
                .limit(ctx.limits.dispatch_limit)
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
