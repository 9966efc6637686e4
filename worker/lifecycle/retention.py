"""Retention: the reconciler deletes jobs that ended more than ``retention_days`` ago, and
their events, in batches of their own transactions so no run holds the table for long."""

from datetime import timedelta

from models.retention import delete_ended_before
from worker.context import WorkerContext

SWEEP_BATCH = 500
"""Jobs deleted per transaction."""
SWEEP_BATCHES = 4
"""Transactions per reconciler run at most: a backlog is worked off over several runs."""


def sweep_expired(ctx: WorkerContext) -> int:
    """Delete what retention says is gone (nothing when ``retention_days`` is 0); how many."""
    if not ctx.limits.retention_days:
        return 0
    cutoff = ctx.clock() - timedelta(days=ctx.limits.retention_days)
    deleted = 0
    for _ in range(SWEEP_BATCHES):
        with ctx.sessions.begin() as session:
            count = delete_ended_before(session, cutoff, limit=SWEEP_BATCH)
        deleted += count
        if count < SWEEP_BATCH:
            break
    return deleted
