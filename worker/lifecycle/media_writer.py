"""The media tick's outcome writer: copy outcomes recorded in groups, from a thread of its own.

A copy thread hands its outcome over and takes the next file at once. The writer takes the
first outcome waiting, lets more gather for ``LINGER`` seconds, takes all that is waiting then
(up to ``MAX_GROUP``), and writes them in one transaction (``models/media_outcomes.py``: on
PostgreSQL one statement for the files and their events); while it writes, the next group
gathers (group commit, as the API's intake does). So a copy never waits for the database,
nor for another copy's generation row lock, and the slower the database answers the more one
commit serves.

An outcome not written (the database failed) is not lost: its file keeps its lease, which runs
out, and the file is copied again by a later tick; :meth:`OutcomeWriter.close` raises the first
such failure, so the tick fails visibly.
"""

import logging
import threading
from collections import Counter
from queue import Empty, SimpleQueue

from models.media import DueFile, Outcome
from models.media_outcomes import record_outcomes
from worker.context import WorkerContext

log = logging.getLogger(__name__)
_STOP = None
LINGER = 0.05
"""Seconds the writer waits for more outcomes after the first of a group: a copy's outcome
is a little later in the database, for a write per wave rather than per file. It sleeps
through them rather than waking for each outcome: every wake takes the GIL from the copy
threads (M1 in ``benchmarks/RESULTS.md``)."""
MAX_GROUP = 1000
"""Outcomes one transaction writes at most. The group grows with the database's latency: all
that ended while the last one was written."""


class OutcomeWriter:
    """Records copy outcomes in groups (see the module docstring); ``counts`` says how many
    ended each way (``lost_lease``: the file's lease had run out and was taken again)."""

    def __init__(self, ctx: WorkerContext) -> None:
        self._ctx = ctx
        self._queue: SimpleQueue[tuple[DueFile, Outcome] | None] = SimpleQueue()
        self._failure: BaseException | None = None
        self._closing = threading.Event()
        self.counts: Counter[str] = Counter()
        self._thread = threading.Thread(target=self._run, name="media-writer", daemon=True)
        self._thread.start()

    def add(self, due: DueFile, outcome: Outcome) -> None:
        self._queue.put((due, outcome))

    def close(self) -> Counter[str]:
        """Write what is waiting, stop, and give the counts; raises a write's failure."""
        self._closing.set()
        self._queue.put(_STOP)
        self._thread.join()
        if self._failure is not None:
            raise self._failure
        return self.counts

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            self._closing.wait(LINGER)  # cut short by close(): what is waiting is written now
            group: list[tuple[DueFile, Outcome]] = []
            while item is not _STOP:
                group.append(item)
                if len(group) >= MAX_GROUP:
                    break
                try:
                    item = self._queue.get_nowait()
                except Empty:
                    break
            stopping = item is _STOP
            if group:
                self._write(group)

    def _write(self, group: list[tuple[DueFile, Outcome]]) -> None:
        try:
            with self._ctx.sessions.begin() as session:
                won = record_outcomes(session, group, self._ctx.clock())
        except Exception as exc:  # the leases run out: the files are copied again later
            log.exception("recording %d media copy outcomes failed", len(group))
            self._failure = self._failure or exc
            self.counts["unrecorded"] += len(group)
            return
        self.counts.update(
            outcome.status.value if ok else "lost_lease"
            for (_, outcome), ok in zip(group, won, strict=True)
        )
