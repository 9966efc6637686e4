"""Send pending generations upstream in batches: one claim, concurrent submits, one write-back.

The ids of a ``generation.submit_many`` message are worked through in waves of
``limits.submit_batch_size`` (the dispatcher publishes one wave per message):

1. **Claim** (``claim.py``): one transaction moves the still-pending rows to ``submitting``
   under one lease token and settles the rest (skipped, deferred by ``max_in_flight``, failed
   past their deadline).
2. **Submit**: every claimed row is POSTed at once, each on a thread of its own over the shared
   client, outside any transaction. A wave is no larger than its thread pool, so the lease
   covers one submit's timeouts, not a queue of them; the write-back waits for the slowest.
3. **Write-back**: one transaction records every answer as ``submit.py`` says, each write
   guarded by the lease token. After the commit, upstream requests accepted for rows whose
   lease was lost (``submit_orphaned``) are cancelled, and the observer hears every outcome.

If a transaction fails, the exception is raised (the task fails and Celery logs it); nothing
is swallowed. A failed claim changes nothing: the rows stay ``pending`` and the dispatcher
publishes them again. A failed write-back (database gone) leaves the wave's rows in
``submitting`` with their lease, exactly like a worker killed mid-submit: once the lease expires
the reconciler resolves each as an ambiguous submit (the policy in ``submit.py``). Accepted
upstream jobs are not cancelled then: the commit may have landed without our hearing of it.
A write-back that fails for one row's sake is retried answer by answer, so only the row the
database refuses is left to the reconciler.
"""

import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from worker.context import WorkerContext
from worker.lifecycle.claim import claim_pending
from worker.lifecycle.submit import Answer, Claim, Recorded, SubmitResult, record_answer
from worker.lifecycle.writeback import write_together
from worker.upstream import SubmitHandle

log = logging.getLogger(__name__)


def submit_generations(ctx: WorkerContext, generation_ids: Sequence[uuid.UUID]) -> dict[str, int]:
    """The body of ``generation.submit_many``: how many rows ended with each ``SubmitResult``."""
    ids = list(dict.fromkeys(generation_ids))
    size = max(1, ctx.limits.submit_batch_size)
    results: dict[uuid.UUID, SubmitResult] = {}
    for start in range(0, len(ids), size):
        results.update(_submit_wave(ctx, ids[start : start + size]))
    return dict(Counter(result.value for result in results.values()))


def _submit_wave(ctx: WorkerContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, SubmitResult]:
    wave = claim_pending(ctx, ids)
    for settled in wave.settled.values():
        settled.report(ctx.observer)
    recorded: dict[uuid.UUID, Recorded] = dict(wave.settled)
    if wave.claims:
        with ThreadPoolExecutor(len(wave.claims), thread_name_prefix="submit") as pool:
            answers = list(pool.map(lambda claim: _call(ctx, claim), wave.claims))
            written = _write_back(ctx, answers)
            orphans = [r.orphan for r in written if r.orphan]
            list(pool.map(lambda handle: _cancel_orphan(ctx, handle), orphans))
        for answer, outcome in zip(answers, written, strict=True):
            outcome.report(ctx.observer)
            recorded[answer.claim.id] = outcome
    return {i: recorded[i].result for i in ids}


def _call(ctx: WorkerContext, claim: Claim) -> Answer:
    try:
        handle = ctx.client.submit(claim.model, claim.input, start_timeout=ctx.limits.start_timeout)
    except Exception as exc:  # classified by record_answer, in the write-back
        return Answer(claim, exc, ctx.clock())
    return Answer(claim, handle, ctx.clock())


def _write_back(ctx: WorkerContext, answers: list[Answer]) -> list[Recorded]:
    def refused(answer: Answer, _: Exception) -> Recorded:
        # Left in ``submitting`` under its lease, as if this worker had died mid-submit: the
        # reconciler resolves it by the ambiguous-submit policy once the lease expires. (Had
        # the whole wave been left so, every row of it would have been resubmitted.)
        return Recorded(SubmitResult.AMBIGUOUS)

    return write_together(
        ctx.sessions,
        answers,
        lambda session, answer: record_answer(ctx, session, answer),
        refused=refused,
        what="submit",
    )


def _cancel_orphan(ctx: WorkerContext, handle: SubmitHandle) -> None:
    try:
        ctx.client.cancel(handle.cancel_url)
    except Exception:
        log.warning("could not cancel orphaned upstream request %s", handle.request_id)
