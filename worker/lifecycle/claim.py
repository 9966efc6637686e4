"""Claiming pending generations for their submit: one transaction for a whole wave of ids.

The rows are read with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL. A row another transaction
holds (a duplicate delivery claiming it, the dispatcher re-publishing it, a cancel) is skipped,
not waited for: if it is still pending afterwards, the dispatcher publishes it again once its
``next_poll_at`` is due. SQLite ignores the clause; its writers are serialized by the
``BEGIN IMMEDIATE`` that models/db.py issues, so the claim reads and writes under the lock too.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.state import transition_many
from models.status import LIVE, GenerationStatus
from models.tables import GENERATIONS, Generation
from worker.context import WorkerContext
from worker.lifecycle.submit import Claim, Recorded, SubmitResult, fail_unsent_past_deadline

DEFER_SECONDS = 1.0
"""How long a row waits when ``max_in_flight`` has no free slot for it."""


@dataclass(frozen=True)
class Wave:
    claims: list[Claim]
    """Rows now ``submitting`` under one lease token, oldest first."""
    settled: dict[uuid.UUID, Recorded]
    """Rows that will not be sent: not pending (skipped), over the cap (deferred), or failed
    because their deadline passed."""


def claim_pending(ctx: WorkerContext, generation_ids: Sequence[uuid.UUID]) -> Wave:
    """Move the still-pending rows among ``generation_ids`` to ``submitting`` with a lease,
    as far as ``max_in_flight`` leaves room, each with the ``status`` event ``transition``
    writes; settle every other id. One transaction, whatever the count."""
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        rows = session.scalars(
            select(Generation)
            .where(
                Generation.id.in_(generation_ids),
                Generation.status == GenerationStatus.PENDING.value,
            )
            .order_by(Generation.created_at, Generation.id)
            .with_for_update(skip_locked=True)
        ).all()
        settled = {i: Recorded(SubmitResult.SKIPPED) for i in generation_ids}
        due: list[Generation] = []
        for gen in rows:
            if now >= gen.deadline_at:
                won = fail_unsent_past_deadline(session, gen, now=now)
                ended = (gen.created_at, now) if won else None
                settled[gen.id] = Recorded(SubmitResult.FAILED, ended=ended)
            else:
                due.append(gen)
        free = _free_slots(ctx, session, wanted=len(due))
        for gen in due[free:]:
            settled[gen.id] = Recorded(SubmitResult.DEFERRED)
        _defer(session, [gen.id for gen in due[free:]], now=now)
        claims = _to_submitting(ctx, session, due[:free], now=now)
    for claim in claims:
        del settled[claim.id]
    return Wave(claims, settled)


def _free_slots(ctx: WorkerContext, session: Session, *, wanted: int) -> int:
    """How many rows may go upstream now: all of them without a cap, else what the cap
    leaves after the rows already live (counted once for the wave)."""
    if not ctx.limits.max_in_flight or not wanted:
        return wanted
    live = session.scalar(
        select(func.count())
        .select_from(Generation)
        .where(Generation.status.in_([s.value for s in LIVE]))
    )
    return max(0, min(wanted, ctx.limits.max_in_flight - int(live or 0)))


def _defer(session: Session, ids: list[uuid.UUID], *, now: datetime) -> None:
    if ids:
        session.execute(
            update(Generation)
            .where(Generation.id.in_(ids), Generation.status == GenerationStatus.PENDING.value)
            .values(next_poll_at=now + timedelta(seconds=DEFER_SECONDS), updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _to_submitting(
    ctx: WorkerContext, session: Session, rows: list[Generation], *, now: datetime
) -> list[Claim]:
    token = str(uuid.uuid4())
    won = set(
        transition_many(
            session,
            [gen.id for gen in rows],
            to=GenerationStatus.SUBMITTING,
            now=now,
            allowed_from={GenerationStatus.PENDING},
            values={
                "submit_attempts": GENERATIONS.c.submit_attempts + 1,
                "lease_token": token,
                "lease_until": now + timedelta(seconds=ctx.limits.lease_seconds),
                "next_poll_at": None,
            },
            details={gen.id: {"attempt": gen.submit_attempts + 1} for gen in rows},
        )
    )
    return [
        Claim(gen.id, gen.model, dict(gen.input), token, gen.submit_attempts + 1, gen.created_at)
        for gen in rows
        if gen.id in won
    ]
