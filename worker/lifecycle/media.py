"""The media tick (``generation.copy_media``): copy completed generations' files into the store.

The database is the timer, as for polls: each file is a ``media_files`` row due at ``next_at``.
Every tick, on a queue of its own (``genqueue.media``, so copies never delay a poll), lists the
files of newly completed generations, leases up to ``media_concurrency`` due files, copies them
at once over one pooled HTTP client, and writes each outcome under its lease. A worker killed
mid-copy loses nothing: the lease runs out (``media_timeout`` and a margin of up to 15 s) and
the next tick copies the file again, to the same key, so it is never stored twice under two names.
Transient failures are retried with doubling delays (2 s … 5 min, with jitter) until
``media_deadline`` after completion; then, or at once for a permanent failure, the file is
``failed`` with the reason, and the job stays ``completed`` with its upstream URL.
"""

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import httpx

from models.media import DueFile, MediaStatus, Outcome, claim_due, expand_pending, record_outcome
from models.media_deletion import deleting_files, forget_files
from models.media_store import MediaStore
from worker.context import WorkerContext
from worker.lifecycle.media_copy import CopyRejected, CopyTransient, copy_file

log = logging.getLogger(__name__)
EXPAND_BATCH = 200
"""Newly completed generations whose files are listed per tick at most."""
PURGE_BATCH = 500
"""Deleted files whose objects are removed per tick at most."""
FIRST_RETRY = 2.0
MAX_RETRY = 300.0
LEASE_MARGIN = 15.0


def media_http(timeout: float, max_connections: int) -> httpx.Client:
    """The copies' pooled client: bounded connect and read waits, redirects followed (CDNs)."""
    return httpx.Client(
        timeout=httpx.Timeout(min(timeout, 30.0)),
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=max_connections),
        headers={"User-Agent": "genqueue-media/0.1"},
    )


def copy_due_media(ctx: WorkerContext, store: MediaStore, http: httpx.Client) -> dict[str, int]:
    """The body of ``generation.copy_media``: how many files ended each way this tick."""
    limits = ctx.limits
    now = ctx.clock()
    margin = min(LEASE_MARGIN, limits.media_timeout)
    lease_until = now + timedelta(seconds=limits.media_timeout + margin)
    with ctx.sessions.begin() as session:
        listed = expand_pending(session, now, limit=EXPAND_BATCH)
    with ctx.sessions.begin() as session:
        due = claim_due(session, now, limit=limits.media_concurrency, lease_until=lease_until)
    counts: Counter[str] = Counter()
    if listed:
        counts["listed"] = listed
    removed = remove_deleted(ctx, store, now)
    if removed:
        counts["removed"] = removed
    if not due:
        return dict(counts)
    with ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="media") as pool:
        counts.update(pool.map(lambda d: _copy_one(ctx, store, http, d), due))
    return dict(counts)


def remove_deleted(ctx: WorkerContext, store: MediaStore, now: datetime) -> int:
    """Remove the objects of files deleted (on request or by retention), then their rows."""
    with ctx.sessions.begin() as session:
        doomed = deleting_files(session, now, limit=PURGE_BATCH)
    if not doomed:
        return 0
    for _, key in doomed:
        store.delete(key)
    with ctx.sessions.begin() as session:
        forget_files(session, [file_id for file_id, _ in doomed])
    return len(doomed)


def _copy_one(ctx: WorkerContext, store: MediaStore, http: httpx.Client, due: DueFile) -> str:
    limits = ctx.limits
    try:
        copied = copy_file(
            http,
            store,
            url=due.upstream_url,
            key=due.key,
            max_bytes=limits.media_max_bytes,
            timeout=limits.media_timeout,
        )
        outcome = Outcome(
            MediaStatus.STORED,
            sha256=copied.sha256,
            size=copied.size,
            content_type=copied.content_type,
            detail={
                "sha256": copied.sha256,
                "size": copied.size,
                "content_type": copied.content_type,
                **({"declared_content_type": copied.declared_type} if copied.mismatch else {}),
            },
        )
    except CopyRejected as exc:
        outcome = Outcome(MediaStatus.FAILED, reason=str(exc))
    except CopyTransient as exc:
        outcome = _retry_or_fail(ctx, due, str(exc))
    except Exception as exc:  # a bug or a store error of another kind: recorded, retried
        log.exception("media copy of %s/%d failed unexpectedly", due.generation_id, due.position)
        outcome = _retry_or_fail(ctx, due, f"{type(exc).__name__}: {exc}"[:300])
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        won = record_outcome(session, due, outcome, now)
    return outcome.status.value if won else "lost_lease"


def _retry_or_fail(ctx: WorkerContext, due: DueFile, reason: str) -> Outcome:
    now = ctx.clock()
    delay = min(FIRST_RETRY * 2**due.attempts, MAX_RETRY) * (1 + 0.2 * ctx.rand())
    retry_at = now + timedelta(seconds=delay)
    if retry_at > _deadline(ctx, due):
        return Outcome(
            MediaStatus.FAILED,
            reason=f"media deadline passed after {due.attempts + 1} attempts; last: {reason}",
        )
    return Outcome(MediaStatus.PENDING, reason=reason, retry_at=retry_at)


def _deadline(ctx: WorkerContext, due: DueFile) -> datetime:
    return due.completed_at + timedelta(seconds=ctx.limits.media_deadline)
