"""Group commit: one writer thread takes every request that is waiting, writes them together,
then answers each of them.

The intake's new generations (``api/intake.py``) and fal's verified webhooks
(``api/fal/settler.py``) are written this way. While one group is written the next gathers, so
under load one transaction serves many requests, and under no load a request waits for nobody.
The writer is told a group's items and answers one outcome per item, in order: a value, or the
exception that item's caller gets. What the writer raises fails every item of its group, and no
failure stops the thread or leaves a caller waiting.

A caller on an event loop awaits :meth:`GroupWriter.put`; the answers of a group reach each
event loop in one wake-up, not one per item (under a burst, waking the loop per answer cost
more than the answers: benchmarks/RESULTS.md, B4). A caller without one gets a
``concurrent.futures.Future`` from :meth:`GroupWriter.submit`.
"""

import asyncio
import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

Write = Callable[[list[T]], Sequence[R | BaseException]]
"""Writes a group; one outcome per item, in order (an exception: that item's caller raises it)."""


@dataclass(frozen=True)
class _Item(Generic[T, R]):
    value: T
    future: "Future[R] | asyncio.Future[R]"
    loop: asyncio.AbstractEventLoop | None
    """The event loop awaiting ``future`` (None: a ``concurrent.futures.Future``)."""


class GroupWriter(Generic[T, R]):
    """One writer thread, started on first use, drained on close (and started again on the
    next use).

    ``write_abandoned``: whether an item whose caller stopped waiting before its group was taken
    (a cancelled await, a cancelled future) is still written. A verified webhook is (fal's
    delivery counts as made); a new generation whose client went away is not."""

    def __init__(
        self,
        write: Write[T, R],
        *,
        name: str,
        max_group: int,
        write_abandoned: bool = True,
    ) -> None:
        if max_group < 1:
            raise ValueError("max_group must be at least 1")
        self._write = write
        self._name = name
        self._max_group = max_group
        self._write_abandoned = write_abandoned
        self._queue: queue.SimpleQueue[_Item[T, R] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    async def put(self, value: T) -> R:
        """Write ``value`` with whatever else is waiting; its outcome, or raise its exception."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._put(_Item(value, future, loop))
        return await future

    def submit(self, value: T) -> "Future[R]":
        """:meth:`put` for a caller without an event loop."""
        future: Future[R] = Future()
        self._put(_Item(value, future, None))
        return future

    def _put(self, item: _Item[T, R]) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put(item)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer once what is queued is written and answered."""
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
            live = [item for item in group if self._awaited(item)]
            try:
                if live:
                    outcomes = self._write([item.value for item in live])
                    if len(outcomes) != len(live):
                        raise RuntimeError(f"{len(outcomes)} outcomes for {len(live)} items")
                    _deliver(zip(live, outcomes, strict=True))
            except BaseException as exc:
                # Nothing may leave a caller waiting forever or stop the writer for the rest.
                log.exception("the %s writer failed a group unexpectedly", self._name)
                _deliver((item, exc) for item in live)

    def _next_group(self) -> tuple[list[_Item[T, R]], bool]:
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

    def _awaited(self, item: _Item[T, R]) -> bool:
        """Whether to write ``item``: its caller still waits, or abandoned items are written."""
        if item.loop is None:
            future = item.future
            assert isinstance(future, Future)
            running = future.set_running_or_notify_cancel()  # no cancelling it from now on
            return running or self._write_abandoned
        return self._write_abandoned or not item.future.cancelled()


def _deliver(outcomes: Iterable[tuple[_Item[T, R], "R | BaseException"]]) -> None:
    """Each outcome to its caller: a ``concurrent.futures.Future`` at once, the asyncio ones in
    one callback per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Item[T, R], R | BaseException]]] = {}
    for item, outcome in outcomes:
        if item.loop is None:
            _resolve([(item, outcome)])
        else:
            by_loop.setdefault(item.loop, []).append((item, outcome))
    for loop, pairs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
            loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[_Item[T, R], "R | BaseException"]]) -> None:
    for item, outcome in pairs:
        if item.future.done():  # cancelled: its caller went away
            continue
        if isinstance(outcome, BaseException):
            item.future.set_exception(outcome)
        else:
            item.future.set_result(outcome)
