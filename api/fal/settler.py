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

from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from api.groupwriter import GroupWriter
from models.batch import write_together
from models.db import UNREACHABLE
from models.upstream_webhook import FalWebhook, Settled, settle_group

MAX_GROUP = 500
"""Webhooks per transaction at most (on SQLite a group's UPDATE picks each payload with a CASE)."""


@dataclass(frozen=True)
class Recorded:
    """One webhook's outcome and the time it was written with."""

    settled: Settled
    now: datetime


Outcome = Recorded | BaseException


class WebhookSettler:
    """One writer thread per API process (:class:`api.groupwriter.GroupWriter`), started on
    first use, drained on close. A webhook whose request went away is written all the same
    (fal will send it again, and it would find the job ended)."""

    def __init__(
        self,
        *,
        sessions: Callable[[], sessionmaker[Session]],
        clock: Callable[[], datetime],
        max_group: int = MAX_GROUP,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._writer: GroupWriter[FalWebhook, Recorded] = GroupWriter(
            self._write, name="webhooks", max_group=max_group
        )

    async def settle(self, hook: FalWebhook) -> Recorded:
        """Write ``hook`` (with whatever else is waiting); raise what the database raised if it
        could not be recorded."""
        return await self._writer.put(hook)

    def submit(self, hook: FalWebhook) -> "Future[Recorded]":
        """:meth:`settle` for a caller without an event loop."""
        return self._writer.submit(hook)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the writer once what is queued is written and answered (it starts again on
        its next use)."""
        self._writer.close(timeout)

    def _write(self, group: list[FalWebhook]) -> list[Outcome]:
        now = self._clock()

        def settle(session: Session, hooks: Sequence[FalWebhook]) -> list[Outcome]:
            return [Recorded(s, now) for s in settle_group(session, hooks, now=now)]

        try:
            return write_together(self._sessions(), group, settle, refused=_refused, what="webhook")
        except UNREACHABLE as exc:
            return [exc] * len(group)


def _refused(_: FalWebhook, exc: Exception) -> Outcome:
    """A webhook the database refused even alone: its request is answered 503."""
    return exc
