"""Verified webhooks are written in groups (group commit), like the intake's new generations.

fal's webhooks come in bursts: jobs submitted together end together. One transaction per
webhook, each on a thread of its own, had the API's threads queueing for the GIL and the
database's commits (benchmarks/RESULTS.md, B4: p99 8 s from a job's end to its terminal state).
Here one writer thread per API process takes every verified webhook that is waiting and settles
them in one transaction (:func:`models.upstream_webhook.settle_group`: the successes in two
statements for the whole group), then answers each request. While one group is written the
next gathers; under no load a webhook waits for nobody.

Nothing is answered before its write is committed. A database outage fails every webhook of
its group (each gets a 503 and fal tries again); any other failure of the group's transaction
has its webhooks written one by one (:func:`models.batch.write_together`), so one the database
refuses fails only its own request (a 503 too: it is not recorded, fal must try again).
"""

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from models.batch import write_together
from models.db import UNREACHABLE
from models.upstream_webhook import FalWebhook, Settled, settle_group

log = logging.getLogger(__name__)
MAX_GROUP = 500
"""Webhooks per transaction at most: a group's UPDATE picks each payload with a CASE."""


@dataclass(frozen=True)
class Recorded:
    """One webhook's outcome and the time it was written with."""

    settled: Settled
    now: datetime


Outcome = Recorded | BaseException


@dataclass(frozen=True)
class _Item:
    hook: FalWebhook
    future: "Future[Recorded] | asyncio.Future[Recorded]"
    loop: asyncio.AbstractEventLoop | None
    """The event loop awaiting ``future`` (None: a ``concurrent.futures.Future``)."""


class WebhookSettler:
    """One writer thread per API process, started on first use, drained on close."""

    def __init__(
        self,
        *,
        sessions: Callable[[], sessionmaker[Session]],
        clock: Callable[[], datetime],
        max_group: int = MAX_GROUP,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._max_group = max_group
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def settle(self, hook: FalWebhook) -> Recorded:
        """Write ``hook`` (with whatever else is waiting); raise what the database raised if it
        could not be recorded. The answers of a group reach each event loop in one wake-up,
        not one per webhook (under a burst, waking the loop per answer cost more than the
        answers)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Recorded] = loop.create_future()
        self._put(_Item(hook, future, loop))
        return await future

    def submit(self, hook: FalWebhook) -> "Future[Recorded]":
        """:meth:`settle` for a caller without an event loop."""
        future: Future[Recorded] = Future()
        self._put(_Item(hook, future, None))
        return future

    def _put(self, item: _Item) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
                self._thread.start()
            self._queue.put(item)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer once what is queued is written and answered (it starts again on
        its next use)."""
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        stop = False
        while not stop:
            group, stop = self._next_group()
            live = [item for item in group if _running(item)]
            try:
                if live:
                    _deliver(zip(live, self._write(live), strict=True))
            except BaseException as exc:
                # Nothing may leave a request waiting forever or stop the writer for the rest.
                log.exception("the webhook writer failed a group unexpectedly")
                _deliver((item, exc) for item in live)

    def _next_group(self) -> tuple[list[_Item], bool]:
        """Everything waiting (at least one item, waited for; at most ``max_group``), and
        whether :meth:`close` asked the writer to stop after it."""
        first = self._queue.get()
        if first is None:
            return [], True
        group = [first]
        while len(group) < self._max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return group, True
            group.append(item)
        return group, False

    def _write(self, group: list[_Item]) -> list[Outcome]:
        now = self._clock()

        def settle(session: Session, items: Sequence[_Item]) -> list[Outcome]:
            hooks = [item.hook for item in items]
            return [Recorded(s, now) for s in settle_group(session, hooks, now=now)]

        try:
            return write_together(self._sessions(), group, settle, refused=_refused, what="webhook")
        except UNREACHABLE as exc:
            return [exc] * len(group)


def _running(item: _Item) -> bool:
    """Still awaited (a request whose client went away is written all the same)."""
    if item.loop is None:
        return bool(item.future.set_running_or_notify_cancel())  # type: ignore[union-attr]
    return True


def _deliver(outcomes: Iterable[tuple[_Item, Outcome]]) -> None:
    """Each outcome to its waiter: a ``concurrent.futures.Future`` at once, the asyncio ones
    in one callback per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item, Outcome]]] = {}
    for item, outcome in outcomes:
        if item.loop is None:
            _resolve([(item, outcome)])
        else:
            by_loop.setdefault(item.loop, []).append((item, outcome))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[_Item, Outcome]]) -> None:
    for item, outcome in pairs:
        if item.future.done():  # cancelled: its client went away
            continue
        if isinstance(outcome, Recorded):
            item.future.set_result(outcome)
        else:
            item.future.set_exception(outcome)


def _refused(_: _Item, exc: Exception) -> Outcome:
    """A webhook the database refused even alone: its request is answered 503."""
    return exc
