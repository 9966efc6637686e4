"""Check a batch of upstream jobs concurrently and record what upstream says.

The dispatcher leased the rows to ``batch_token``. The batch swaps that token for its own in one
compare-and-set, so a second delivery of the same message finds nothing to do. Every job is
then checked upstream (status, and the result when it is done) on a pool of threads, and what
each check decided is written in one transaction for the whole batch, every write guarded by
the new token: if the lease ran out and another poller took a row, ours loses.

If that transaction fails because the database is gone, the task fails and the rows keep their
lease; when it expires the dispatcher claims them again and they are checked again (a result
fetched meanwhile is still upstream). If it fails for one row's sake (a result the database
refuses, say), each write is retried alone and the one that still fails is recorded as a poll
error instead, so one row never holds its batch back.
"""

import logging
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.state import record_event, transition, update_where
from models.status import ACTIVE, GenerationStatus
from models.tables import GENERATIONS, Generation
from models.vocabulary import ErrorType, EventKind
from worker.backoff import RunTimeEstimate, next_poll_delay
from worker.context import WorkerContext
from worker.lifecycle.cancel import send_cancel
from worker.lifecycle.errors import error_record, from_upstream
from worker.lifecycle.estimates import estimates_for
from worker.lifecycle.settle import settle_completed
from worker.lifecycle.snapshot import Snapshot, Write, end_job, retry_later
from worker.lifecycle.writeback import write_together
from worker.upstream import QueueState, StatusReport, UpstreamRejected, UpstreamTransient

log = logging.getLogger(__name__)


def poll_generations(
    ctx: WorkerContext, generation_ids: list[uuid.UUID], batch_token: str
) -> dict[str, int]:
    snapshots = _claim(ctx, generation_ids, batch_token)
    if not snapshots:
        return {}
    estimates = estimates_for(ctx, {s.model for s in snapshots})
    workers = max(1, min(ctx.limits.poll_threads, len(snapshots)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
        writes = list(pool.map(lambda s: _poll_safely(ctx, s, estimates.get(s.model)), snapshots))
    won = _write_back(ctx, snapshots, writes)
    for write, ok in zip(writes, won, strict=True):
        if ok:
            write.report(ctx.observer)
    return dict(Counter(w.outcome for w in writes))


def _write_back(ctx: WorkerContext, snapshots: list[Snapshot], writes: list[Write]) -> list[bool]:
    def refused(pair: tuple[Snapshot, Write], exc: Exception) -> bool:
        message = f"{type(exc).__name__}: {exc}"
        fallback = retry_later(ctx, pair[0], kind=EventKind.POLL_ERROR, message=message)
        with ctx.sessions.begin() as session:
            return fallback.apply(session)

    return write_together(
        ctx.sessions,
        list(zip(snapshots, writes, strict=True)),
        lambda session, pair: pair[1].apply(session),
        refused=refused,
        what="poll",
    )


def _claim(ctx: WorkerContext, ids: list[uuid.UUID], batch_token: str) -> list[Snapshot]:
    now = ctx.clock()
    mine = str(uuid.uuid4())
    with ctx.sessions.begin() as session:
        session.execute(
            update(Generation)
            .where(Generation.id.in_(ids), Generation.lease_token == batch_token)
            .where(Generation.status.in_([s.value for s in ACTIVE]))
            .values(lease_token=mine, lease_until=now + timedelta(seconds=ctx.limits.lease_seconds))
            .execution_options(synchronize_session=False)
        )
        rows = session.scalars(select(Generation).where(Generation.lease_token == mine)).all()
        return [
            Snapshot(
                id=g.id,
                model=g.model,
                status=GenerationStatus(g.status),
                status_url=g.status_url or "",
                response_url=g.response_url or "",
                cancel_url=g.cancel_url or "",
                queue_position=g.queue_position,
                poll_count=g.poll_count,
                error_count=g.error_count,
                submitted_at=g.submitted_at or g.created_at,
                deadline_at=g.deadline_at,
                cancel_requested_at=g.cancel_requested_at,
                cancel_sent_at=g.cancel_sent_at,
                last_polled_at=g.last_polled_at,
                created_at=g.created_at,
                token=mine,
            )
            for g in rows
        ]


def _poll_safely(ctx: WorkerContext, snap: Snapshot, estimate: RunTimeEstimate | None) -> Write:
    try:
        return poll_one(ctx, snap, estimate)
    except Exception as exc:  # a bug must not strand the row: record it and retry later
        log.exception("poll of %s failed unexpectedly", snap.id)
        return retry_later(
            ctx, snap, kind=EventKind.POLL_ERROR, message=f"{type(exc).__name__}: {exc}"
        )


def poll_one(ctx: WorkerContext, snap: Snapshot, estimate: RunTimeEstimate | None) -> Write:
    now = ctx.clock()
    if now >= snap.deadline_at:
        return _deadline(ctx, snap)
    if snap.cancel_requested_at and not snap.cancel_sent_at:
        send_cancel(ctx, snap.id, snap.cancel_url)
    try:
        report = ctx.client.status(snap.status_url)
    except UpstreamRejected as exc:
        return end_job(
            ctx,
            snap,
            GenerationStatus.FAILED,
            from_upstream(ErrorType.UPSTREAM_REJECTED, exc),
            EventKind.FAILED,
        )
    except UpstreamTransient as exc:
        return retry_later(ctx, snap, kind=EventKind.POLL_RETRY, exc=exc)
    if report.state is QueueState.COMPLETED:
        return settle_completed(ctx, snap, report)
    return _progress(ctx, snap, report, estimate)


def _progress(
    ctx: WorkerContext, snap: Snapshot, report: StatusReport, estimate: RunTimeEstimate | None
) -> Write:
    now = ctx.clock()
    state = (
        GenerationStatus.QUEUED if report.state is QueueState.IN_QUEUE else GenerationStatus.RUNNING
    )
    position = report.queue_position if state is GenerationStatus.QUEUED else None
    age = (now - snap.submitted_at).total_seconds()
    delay = next_poll_delay(
        attempt=snap.poll_count + 1,
        state=state,
        queue_position=position,
        age=age,
        policy=ctx.policy,
        rand=ctx.rand(),
        estimate=estimate,
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
    guard = [GENERATIONS.c.lease_token == snap.token]
    if state is not snap.status and state is GenerationStatus.RUNNING:
        values["started_at"] = now

    def apply(session: Session) -> bool:
        if state is not snap.status:
            return transition(
                session,
                snap.id,
                to=state,
                now=now,
                allowed_from={snap.status},
                where=guard,
                values=values,
                queue_position=position,
            )
        kept = update_where(session, snap.id, now=now, statuses={state}, values=values, where=guard)
        if not kept:
            return False
        if position is not None and position != snap.queue_position:
            record_event(
                session,
                snap.id,
                kind=EventKind.QUEUE_POSITION,
                now=now,
                status=state,
                queue_position=position,
            )
        return True

    return Write(state.value, apply)


def _deadline(ctx: WorkerContext, snap: Snapshot) -> Write:
    outcome = send_cancel(ctx, snap.id, snap.cancel_url)
    message = "the job's deadline passed; upstream cancel: " + (outcome or "not sent")
    return end_job(
        ctx,
        snap,
        GenerationStatus.FAILED,
        error_record(ErrorType.DEADLINE_EXCEEDED, message),
        EventKind.DEADLINE_EXCEEDED,
    )
