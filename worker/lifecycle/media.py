"""The media tick (``generation.copy_media``): copy completed generations' files into the store.

The database is the timer, as for polls: each file is a ``media_files`` row due at ``next_at``.
Every tick, on a queue of its own (``genqueue.media``, so copies never delay a poll), lists the
files of newly completed generations, leases due files ahead of its ``media_concurrency`` copy
threads, copies them over one pooled HTTP client, and writes the outcomes under their leases in
groups (``media_writer.py``). A worker killed mid-copy loses nothing: the lease runs out (three
``media_timeout`` and a margin of up to 15 s: a leased file may wait in the queue for two rounds
of copies before its own) and a later tick copies the file again, to the same key, so it is
never stored twice under two names.
Transient failures are retried with doubling delays (2 s … 5 min, with jitter) until
``media_deadline`` after completion; then, or at once for a permanent failure, the file is
``failed`` with the reason, and the job stays ``completed`` with its upstream URL.
"""

import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from queue import SimpleQueue

import httpx
from sqlalchemy.orm import Session
from ssrfguard.httpx import Client as GuardedClient

from models.destinations import AddressPolicy
from models.media import DueFile, MediaStatus, Outcome, claim_due, expand_pending
from models.media_deletion import deleting_files, forget_files
from models.media_store import MediaStore
from worker.context import WorkerContext
from worker.cpu_priority import lower_thread_priority
from worker.lifecycle.media_copy import CopyRejected, CopyTransient, copy_file
from worker.lifecycle.media_writer import OutcomeWriter

log = logging.getLogger(__name__)
EXPAND_BATCH = 200
"""Newly completed generations whose files are listed per tick at most."""
TICK_BUDGET = 10.0
"""Seconds a tick keeps leasing more files (the copies it started then still finish)."""
LIST_INTERVAL = 1.0
"""Seconds between listings within a tick while files listed before are still due: a result
that completes meanwhile, and that somebody waits for, is listed, so leased first, within this."""
PURGE_BATCH = 500
"""Deleted files whose objects are removed per tick at most."""
FIRST_RETRY = 2.0
MAX_RETRY = 300.0
LEASE_MARGIN = 15.0
_ONE_TICK = threading.Lock()
"""Held by the media tick running in this process: beat sends a tick a second, and a worker
with several threads would otherwise run as many ticks (each ``media_concurrency`` copies)."""
QUEUED_ROUNDS = 2
"""Rounds of ``media_concurrency`` files leased and queued behind the running copies at most:
a file's lease covers its wait in the queue (that many copies' time limits) and its copy."""


def media_http(timeout: float, max_connections: int, policy: AddressPolicy) -> httpx.Client:
    """The copies' pooled client: bounded connect and read waits, redirects followed (CDNs),
    and every hop under the address policy of client webhooks (``models/destinations.py``):
    ssrfguard resolves each host once, refuses private, loopback and link-local addresses
    unless ``policy`` allows them, and connects to the address it checked; the policy's own
    check refuses legacy address spellings and loopback names first. A result that names an
    inside address (a compromised relay, a crafted upstream answer) copies nothing."""

    def check(request: httpx.Request) -> None:
        policy.check(str(request.url))

    return GuardedClient(
        policy=policy.public_only,
        timeout=httpx.Timeout(min(timeout, 30.0)),
        follow_redirects=True,
        max_redirects=5,
        limits=httpx.Limits(max_connections=max_connections),
        headers={"User-Agent": "genqueue-media/0.1"},
        event_hooks={"request": [check]},
        trust_env=False,
    )


def media_tick(ctx: WorkerContext, store: MediaStore, http: httpx.Client) -> dict[str, int]:
    """``generation.copy_media``: :func:`copy_due_media`, unless a tick is running in this
    process already (then ``{"skipped": 1}`` at once): a worker process copies at most
    ``media_concurrency`` files at once, however many threads it has, and its other threads
    stay free for client webhooks."""
    if not _ONE_TICK.acquire(blocking=False):
        return {"skipped": 1}
    try:
        return copy_due_media(ctx, store, http)
    finally:
        _ONE_TICK.release()


def copy_due_media(ctx: WorkerContext, store: MediaStore, http: httpx.Client) -> dict[str, int]:
    """The body of ``generation.copy_media``: how many files ended each way this tick.

    ``media_concurrency`` copy threads take leased files from a queue, one after another, and
    hand each outcome to the writer (``media_writer.py``: group commits). This thread keeps
    ``QUEUED_ROUNDS`` rounds of files leased and queued ahead of them, topping the queue up
    whenever it falls to one round (a copy thread says so then, not at every file: each wake
    of this thread takes the GIL from the copies), so the copy threads never wait for a
    lease, however slow the database answers. The leases are taken over one connection held
    for the tick, in autocommit (one round trip each: no checkout, ping or reset per lease).
    It lists newly completed results again when the listed files are all leased, and every
    ``LIST_INTERVAL`` (the lease takes those somebody waits for first). It stops leasing when
    none is due or ``TICK_BUDGET`` has passed (the next tick goes on), so one slow file holds
    one slot, never the tick."""
    started = time.monotonic()
    counts: Counter[str] = Counter()
    listed = _expand(ctx)
    listed_at = time.monotonic()
    removed = remove_deleted(ctx, store, ctx.clock())
    counts.update({k: v for k, v in (("listed", listed), ("removed", removed)) if v})
    slots = ctx.limits.media_concurrency
    writer = OutcomeWriter(ctx)
    try:
        with _leases(ctx) as lease, _Copiers(ctx, store, http, writer) as copiers:
            while time.monotonic() - started < TICK_BUDGET:
                room = QUEUED_ROUNDS * slots - copiers.queued()
                if room < slots:
                    copiers.wait_low(TICK_BUDGET - (time.monotonic() - started))
                    continue
                due = lease(room)
                copiers.add(due)
                if len(due) < room or time.monotonic() - listed_at >= LIST_INTERVAL:
                    listed = _expand(ctx)
                    listed_at = time.monotonic()
                    counts["listed"] += listed
                    if len(due) < room and not listed:
                        break
    finally:
        counts.update(writer.close())
    return {k: v for k, v in counts.items() if v}


class _Copiers:
    """The tick's copy threads (up to ``media_concurrency``, started as files come, at the CPU
    priority of ``media_nice``) and the queue of leased files they take from. Leaving the
    block lets them copy what is queued, then ends them, and raises what one of them raised."""

    def __init__(
        self, ctx: WorkerContext, store: MediaStore, http: httpx.Client, writer: OutcomeWriter
    ) -> None:
        self._ctx, self._store, self._http, self._writer = ctx, store, http, writer
        self._slots = ctx.limits.media_concurrency
        self._queue: SimpleQueue[DueFile | None] = SimpleQueue()
        self._low = threading.Event()
        self._failure: BaseException | None = None
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> "_Copiers":
        return self

    def __exit__(self, *exc: object) -> None:
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if self._failure is not None and exc[0] is None:
            raise self._failure

    def queued(self) -> int:
        return self._queue.qsize()

    def add(self, files: list[DueFile]) -> None:
        for due in files:
            self._queue.put(due)
        while len(self._threads) < min(self._slots, self._queue.qsize()):
            thread = threading.Thread(target=self._run, name=f"media-{len(self._threads)}")
            self._threads.append(thread)
            thread.start()

    def wait_low(self, timeout: float) -> None:
        """Until the queue falls to one round of files or ``timeout`` passes; raises what a
        copy thread raised."""
        self._low.clear()  # then look: a take after this sets it again
        if self._queue.qsize() > self._slots and timeout > 0:
            self._low.wait(timeout)
        if self._failure is not None:
            raise self._failure

    def _run(self) -> None:
        lower_thread_priority(self._ctx.limits.media_nice)
        while (due := self._queue.get()) is not None:
            if self._queue.qsize() <= self._slots:
                self._low.set()
            try:
                self._writer.add(due, _attempt(self._ctx, self._store, self._http, due))
            except BaseException as exc:  # _attempt records every Exception: not reached
                self._failure = self._failure or exc
                self._low.set()
                return


def _expand(ctx: WorkerContext) -> int:
    with ctx.sessions.begin() as session:
        return expand_pending(session, ctx.clock(), limit=EXPAND_BATCH, wait=ctx.limits.media_wait)


@contextmanager
def _leases(ctx: WorkerContext) -> Iterator[Callable[[int], list[DueFile]]]:
    """Lease due files, up to a number, in one statement each, in autocommit (each statement
    atomic by itself: no BEGIN and COMMIT round trips, which a loaded database makes the slow
    part), over one session held for the tick: no pool checkout, ping and reset per lease.
    SQLite begins a write transaction even so (``models/db.py``): there each lease has a
    session of its own."""
    timeout = ctx.limits.media_timeout
    seconds = (1 + QUEUED_ROUNDS) * timeout + min(LEASE_MARGIN, timeout)

    def lease(session: Session, limit: int) -> list[DueFile]:
        now = ctx.clock()
        until = now + timedelta(seconds=seconds)
        return claim_due(session, now, limit=limit, lease_until=until)

    with ctx.sessions() as held:
        connection = held.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        if connection.dialect.name == "postgresql":
            yield functools.partial(lease, held)
            return

    def alone(limit: int) -> list[DueFile]:
        with ctx.sessions.begin() as session:
            return lease(session, limit)

    yield alone


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


def _attempt(ctx: WorkerContext, store: MediaStore, http: httpx.Client, due: DueFile) -> Outcome:
    """Copy one file: how it went. The copy ends before its lease does (a file that waited
    in the queue gets what is left of it), so no other tick copies it at the same time."""
    limits = ctx.limits
    now = ctx.clock()
    time_limit = min(limits.media_timeout, (due.lease_until - now).total_seconds())
    if time_limit <= 0:
        reason = "the lease ran out before the copy began"
        return Outcome(MediaStatus.PENDING, reason=reason, retry_at=now)
    try:
        copied = copy_file(
            http,
            store,
            url=due.upstream_url,
            key=due.key,
            max_bytes=limits.media_max_bytes,
            timeout=time_limit,
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
    return outcome


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
