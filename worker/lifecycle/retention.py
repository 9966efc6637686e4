"""Retention: the reconciler deletes jobs that ended more than ``retention_days`` ago, and
their events, in batches of their own transactions so no run holds the table for long; and
clears the outputs (stored files, result, input) of jobs that ended more than
``media_retention_days`` ago, through the same path as ``DELETE /v1/generations/{id}``
(models/media_deletion.py). A job with stored files is tombstoned first, and its row goes once
the media tick has removed them."""

from datetime import timedelta

from models.media_deletion import ended_before, tombstone
from models.retention import delete_ended_before
from worker.context import WorkerContext

SWEEP_BATCH = 500
"""Jobs deleted per transaction."""
SWEEP_BATCHES = 4
"""Transactions per reconciler run at most: a backlog is worked off over several runs."""


def sweep_expired(ctx: WorkerContext) -> int:
    """Delete what retention says is gone (nothing when ``retention_days`` is 0); how many."""
    if ctx.limits.media_retention_days:
        tombstone_expired(ctx, ctx.limits.media_retention_days)
    if not ctx.limits.retention_days:
        return 0
    tombstone_expired(ctx, ctx.limits.retention_days, with_files_only=True)
    cutoff = ctx.clock() - timedelta(days=ctx.limits.retention_days)
    deleted = 0
    for _ in range(SWEEP_BATCHES):
        with ctx.sessions.begin() as session:
            count = delete_ended_before(session, cutoff, limit=SWEEP_BATCH)
        deleted += count
        if count < SWEEP_BATCH:
            break
    return deleted


def tombstone_expired(ctx: WorkerContext, days: float, *, with_files_only: bool = False) -> int:
    """Clear the outputs of jobs that ended more than ``days`` ago (``with_files_only``: of
    those with stored files alone), in batches; how many."""
    now = ctx.clock()
    cutoff = now - timedelta(days=days)
    cleared = 0
    for _ in range(SWEEP_BATCHES):
        with ctx.sessions.begin() as session:
            ids = ended_before(
                session,
                cutoff,
                limit=SWEEP_BATCH,
                with_files_only=with_files_only,
            )
            count = tombstone(session, ids, now, reason="retention")
        cleared += count
        if len(ids) < SWEEP_BATCH:
            break
    return cleared
