"""Ending a job for a reason of genqueue's own, without throwing away what upstream finished.

genqueue ends a job itself in two cases: its deadline passed, or its polls kept failing
(``max_poll_errors`` in a row). Either way upstream is asked first, and a job upstream has
finished is never ended without its result:

- The poll's check has already asked (status, and the result the moment it is done). If
  upstream finished the job, its word stands: ``completed`` with the result, or ended as
  upstream says (a 499 after genqueue's own deadline cancel is ``failed`` /
  ``deadline_exceeded``, upstream's answer kept).
- Otherwise the upstream cancel is sent, once (``cancel_sent_at`` claims it). If upstream
  answers ``ALREADY_COMPLETED``, the job finished in between (or while its status could not be
  read): its result is fetched at once.
- Past the deadline, a job whose cancel was sent is polled on until upstream settles it (a
  running job may still finish: then it is ``completed``), for ``deadline_grace`` seconds; then
  it ends ``failed`` / ``deadline_exceeded``. A job upstream cannot be asked about is retried
  like any other poll error: it ends once upstream answers, or when its polls run out.
- When its polls ran out, the cancel is sent the same way before the job ends ``failed`` /
  ``retries_exhausted`` (upstream's answer in the message), unless the cancel says upstream
  completed it and its result can be fetched.
"""

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

from models.status import TERMINAL
from models.vocabulary import ErrorType, EventKind
from worker.context import WorkerContext
from worker.lifecycle.cancel import send_cancel
from worker.lifecycle.errors import error_record
from worker.lifecycle.poll_outcome import LeasedRow, PollOutcome, fail, look_again_soon
from worker.upstream import UpstreamCancelOutcome

log = logging.getLogger(__name__)
RETRY = "retry"
"""The label of an outcome that looks again later (``retry_later``)."""

Fetcher = Callable[[LeasedRow], PollOutcome]
"""Fetches the result of a row upstream says it completed, and says what it becomes."""


def settle(
    ctx: WorkerContext, row: LeasedRow, asked: PollOutcome, now: datetime, fetch: Fetcher
) -> PollOutcome:
    """What ``asked``, the row's check, becomes once genqueue's own limits apply: unchanged
    unless the deadline passed or the polls ran out and upstream has not ended the job."""
    if asked.to in TERMINAL and not asked.forced:
        return asked  # upstream's word
    if not (asked.forced or now >= row.deadline_at):
        return asked
    if row.cancel_sent_at is None:
        return _cancel_first(ctx, row, asked, fetch)
    if asked.forced or asked.label == RETRY:
        return asked
    if now >= row.deadline_at + timedelta(seconds=ctx.limits.deadline_grace):
        return _deadline_failure(ctx, row)
    return look_again_soon(ctx, asked)


def _cancel_first(
    ctx: WorkerContext, row: LeasedRow, asked: PollOutcome, fetch: Fetcher
) -> PollOutcome:
    reason = ErrorType.RETRIES_EXHAUSTED.value if asked.forced else "deadline"
    try:
        answer = send_cancel(ctx, row.id, row.cancel_url, reason=reason)
    except Exception:  # not sent: the next poll tries again (or the job ends as asked says)
        log.exception("cancel of %s failed unexpectedly", row.id)
        answer = None
    if answer == UpstreamCancelOutcome.ALREADY_COMPLETED:
        fetched = fetch(row)  # upstream finished it after all: fetch the result now
        return _noted(fetched, answer) if fetched.forced else fetched
    if asked.forced:
        return _noted(asked, answer)
    if asked.label == RETRY:
        return asked
    return look_again_soon(ctx, asked)  # until upstream settles the cancel, or the grace ends


def _deadline_failure(ctx: WorkerContext, row: LeasedRow) -> PollOutcome:
    grace = ctx.limits.deadline_grace
    message = (
        "the job's deadline passed; upstream was asked to cancel it and had not ended it "
        f"{grace:g} s later"
    )
    error = error_record(ErrorType.DEADLINE_EXCEEDED, message)
    return fail(ctx, row, error, event=EventKind.DEADLINE_EXCEEDED)


def _noted(outcome: PollOutcome, answer: str | None) -> PollOutcome:
    """A forced end's error, with what upstream answered the cancel sent before it."""
    error = dict(outcome.values["error"])
    error["message"] = f"{error['message']}; upstream cancel: {answer or 'not sent'}"
    return replace(outcome, values={**outcome.values, "error": error})
