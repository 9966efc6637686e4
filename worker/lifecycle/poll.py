"""Check a batch of upstream jobs concurrently and record what upstream says.

The body of ``generation.poll_batch``, in six steps, read top to bottom:

1. **Claim.** The dispatcher leased the rows to ``batch_token``; the batch swaps that token for
   its own in one compare-and-set, so a second delivery of the same message finds nothing to do.
2. **Cancel.** Rows whose cancel a client asked for but was not sent yet are cancelled upstream
   first, concurrently (``cancel.py``: each cancel is claimed once and its answer recorded in
   transactions of its own).
3. **Check.** Every row is checked upstream (status, and the result the moment it is done) on
   a pool of threads. Nothing is written yet: each check ends in a ``PollOutcome``, a record of
   what its answer becomes (``poll_outcome.py``).
4. **Give up.** A row past its deadline, or whose polls ran out, that upstream has not ended is
   cancelled upstream now, after the check, so a job upstream finished is fetched, never
   thrown away (``give_up.py``).
5. **Write.** One transaction applies every outcome, each guarded by the new token: if the lease
   ran out and another poller took a row, ours loses.
6. **Report.** The observer hears of each outcome that was committed.

If the write fails because the database is gone, the task fails and the rows keep their
lease; when it expires the dispatcher claims them again and they are checked again (a result
fetched meanwhile is still upstream). If it fails for one row's sake (a result the database
refuses, say), each outcome is written alone and the one that still fails is recorded as a poll
error instead, so one row never holds its batch back.
"""

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.batch import each, write_together
from models.errors import is_cancel, upstream_message
from models.status import ACTIVE, GenerationStatus
from models.tables import Generation
from models.vocabulary import ErrorType, EventKind
from worker.backoff import RunTimeEstimate
from worker.context import WorkerContext
from worker.lifecycle.cancel import send_cancel
from worker.lifecycle.errors import error_record, from_upstream
from worker.lifecycle.estimates import estimates_for
from worker.lifecycle.give_up import settle
from worker.lifecycle.poll_outcome import (
    LeasedRow,
    PollOutcome,
    apply_outcome,
    end,
    fail,
    progress,
    retry_later,
)
from worker.upstream import (
    QueueState,
    StatusReport,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamResult,
    UpstreamTransient,
)

log = logging.getLogger(__name__)
"""Upstream ``error_type`` values of a request that was cancelled."""

CancelSent = str | None | Exception
"""What a cancel sent in step 2 came to: upstream's answer, None when none was sent (another
worker had sent it, or upstream could not be reached), or what it raised unexpectedly."""


def poll_generations(
    ctx: WorkerContext, generation_ids: list[uuid.UUID], batch_token: str
) -> dict[str, int]:
    """The body of ``generation.poll_batch``: how many rows ended in each outcome."""
    rows = _claim(ctx, generation_ids, batch_token)
    if not rows:
        return {}
    now = ctx.clock()
    estimates = estimates_for(ctx, {row.model for row in rows})
    workers = max(1, min(ctx.limits.poll_threads, len(rows)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="poll") as pool:
        cancels = _cancel_upstream(ctx, pool, [row for row in rows if _cancel_asked(row)])
        asked = pool.map(lambda row: _check(ctx, row, cancels, estimates.get(row.model)), rows)
        outcomes = list(
            pool.map(
                lambda row, outcome: settle(
                    ctx, row, outcome, now, lambda r: _fetch_result(ctx, r)
                ),
                rows,
                list(asked),
            )
        )
    for committed in _write(ctx, outcomes):
        if committed is not None:
            committed.report(ctx.observer)
    return dict(Counter(outcome.label for outcome in outcomes))


def _claim(ctx: WorkerContext, ids: list[uuid.UUID], batch_token: str) -> list[LeasedRow]:
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
            LeasedRow(
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
                expects_webhook=g.expects_webhook,
            )
            for g in rows
        ]


def _cancel_asked(row: LeasedRow) -> bool:
    """A cancel a client asked for is sent before the row is checked again (the check then
    sees whether upstream honoured it)."""
    return bool(row.cancel_requested_at and not row.cancel_sent_at)


def _cancel_upstream(
    ctx: WorkerContext, pool: Executor, rows: Sequence[LeasedRow]
) -> dict[uuid.UUID, CancelSent]:
    def cancel(row: LeasedRow) -> CancelSent:
        try:
            return send_cancel(ctx, row.id, row.cancel_url)
        except Exception as exc:  # recorded as the row's poll error by _check
            log.exception("cancel of %s failed unexpectedly", row.id)
            return exc

    return dict(zip([row.id for row in rows], pool.map(cancel, rows), strict=True))


def _check(
    ctx: WorkerContext,
    row: LeasedRow,
    cancels: dict[uuid.UUID, CancelSent] | None = None,
    estimate: RunTimeEstimate | None = None,
) -> PollOutcome:
    sent = (cancels or {}).get(row.id)
    try:
        if isinstance(sent, Exception):
            return _poll_error(ctx, row, sent)
        return _read_upstream(ctx, row, estimate)
    except Exception as exc:  # a bug must not strand the row: record it and retry later
        log.exception("poll of %s failed unexpectedly", row.id)
        return _poll_error(ctx, row, exc)


def _poll_error(ctx: WorkerContext, row: LeasedRow, exc: Exception) -> PollOutcome:
    return retry_later(ctx, row, EventKind.POLL_ERROR, message=f"{type(exc).__name__}: {exc}")


def _read_upstream(
    ctx: WorkerContext, row: LeasedRow, estimate: RunTimeEstimate | None
) -> PollOutcome:
    """Ask upstream how the job is doing, fetch its result the moment it is done (results
    expire upstream), and say what the answer becomes."""
    try:
        report = ctx.client.status(row.status_url)
    except UpstreamRejected as exc:
        return fail(ctx, row, from_upstream(ErrorType.UPSTREAM_REJECTED, exc))
    except UpstreamTransient as exc:
        return retry_later(ctx, row, EventKind.POLL_RETRY, exc=exc)
    if report.state is QueueState.COMPLETED:
        return _fetch_result(ctx, row, report)
    return progress(ctx, row, report, estimate)


def _fetch_result(
    ctx: WorkerContext, row: LeasedRow, report: StatusReport | None = None
) -> PollOutcome:
    """Upstream says COMPLETED (in a status ``report``, or by answering a cancel with
    ``ALREADY_COMPLETED``): fetch the result now and end the job as it says."""
    now = ctx.clock()
    run_seconds = _run_seconds(row, now)
    try:
        answer = ctx.client.result(row.response_url)
    except UpstreamNotFound as exc:
        error = from_upstream(ErrorType.RESULT_UNAVAILABLE, exc)
        error["message"] = "upstream completed the job but no longer has its result (expired?)"
        return fail(ctx, row, error)
    except UpstreamRejected as exc:
        return fail(ctx, row, from_upstream(ErrorType.UPSTREAM_REJECTED, exc))
    except UpstreamTransient as exc:
        return retry_later(ctx, row, EventKind.RESULT_RETRY, exc=exc)
    metrics = report.metrics if report else {}
    detail: dict[str, Any] = {"http_status": answer.http_status, "metrics": metrics}
    if row.cancel_requested_at:
        detail["cancel_requested"] = True
    if answer.ok:
        if row.cancel_requested_at:
            detail["note"] = "cancel came too late: upstream finished the job"
        return end(
            ctx,
            row,
            GenerationStatus.COMPLETED,
            EventKind.COMPLETED,
            None,
            result=answer.body,
            detail=detail,
            run_seconds=run_seconds,
            billable_units=answer.billable_units,
        )
    return _upstream_failure(ctx, row, report, answer, detail, run_seconds)


def _upstream_failure(
    ctx: WorkerContext,
    row: LeasedRow,
    report: StatusReport | None,
    answer: UpstreamResult,
    detail: dict[str, Any],
    run_seconds: float,
) -> PollOutcome:
    """The job ended upstream without a result: cancelled (a client's cancel honoured, or
    genqueue's at the deadline), or failed there. Upstream's code and body are kept."""
    cancelled = is_cancel(answer.http_status, answer.error_type)
    expired = cancelled and not row.cancel_requested_at and ctx.clock() >= row.deadline_at
    kind = ErrorType.CANCELLED if cancelled else ErrorType.UPSTREAM_ERROR
    message = (
        (report.error if report else None)
        or upstream_message(answer.body)
        or f"upstream answered HTTP {answer.http_status}"
    )
    if expired:
        kind, message = (
            ErrorType.DEADLINE_EXCEEDED,
            "the job's deadline passed; upstream cancelled it",
        )
    error = error_record(
        kind,
        message,
        http_status=answer.http_status,
        body=answer.body,
        error_type=answer.error_type or (report.error_type if report else None),
    )
    detail["error_type"] = error["error_type"]
    units = answer.billable_units
    if expired:
        return fail(
            ctx, row, error, event=EventKind.DEADLINE_EXCEEDED, detail=detail, billable_units=units
        )
    if cancelled:
        return end(
            ctx,
            row,
            GenerationStatus.CANCELLED,
            EventKind.CANCELLED,
            error,
            detail=detail,
            billable_units=units,
        )
    return fail(ctx, row, error, detail=detail, run_seconds=run_seconds, billable_units=units)


def _write(ctx: WorkerContext, outcomes: list[PollOutcome]) -> list[PollOutcome | None]:
    """Apply every outcome in one transaction (one by one if that fails for a row's sake):
    the outcome each row's write committed, None where it lost."""

    def write(session: Session, outcome: PollOutcome) -> PollOutcome | None:
        return outcome if apply_outcome(session, outcome) else None

    def refused(outcome: PollOutcome, exc: Exception) -> PollOutcome | None:
        with ctx.sessions.begin() as session:
            return write(session, _poll_error(ctx, outcome.row, exc))

    return write_together(ctx.sessions, outcomes, each(write), refused=refused, what="poll")


def _run_seconds(row: LeasedRow, now: datetime) -> float:
    """Upstream's finish lies between our last poll that saw it unfinished and now: take the
    middle, so the estimate neither lags behind nor drifts later with our own detection delay."""
    last = row.last_polled_at or row.submitted_at
    finished = last + (now - last) / 2
    return max(0.0, float((finished - row.submitted_at).total_seconds()))
