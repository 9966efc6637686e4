"""Watching a phase from outside: wait until its jobs end, sample a gauge's peak, read the rows."""

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.rawhttp import Connection
from models.status import TERMINAL
from models.tables import Generation

TERMINAL_VALUES = frozenset(s.value for s in TERMINAL)


class Observed(Protocol):
    """What a phase reads of the stack it runs on: one host's (``stack.Stack``) or several
    hosts' (``cluster.Cluster``)."""

    sessions: sessionmaker[Session]
    sim_host: str
    sim_port: int

    def status_counts(self) -> dict[str, int]: ...

    def sim_stats(self) -> dict[str, Any]: ...


def wait_terminal(stack: Observed, expected: int, timeout: float) -> dict[str, int]:
    """Wait (bounded) until ``expected`` generations are terminal; return the status counts."""
    deadline = time.monotonic() + timeout
    counts = stack.status_counts()
    while time.monotonic() < deadline:
        counts = stack.status_counts()
        if sum(n for s, n in counts.items() if s in TERMINAL_VALUES) >= expected:
            break
        time.sleep(0.25)
    return counts


def wait_jobs_terminal(
    sessions: sessionmaker[Session], ids: Collection[str], timeout: float
) -> int:
    """Wait (bounded) until every job of ``ids`` is terminal; how many of them are.

    Unlike :func:`wait_terminal` only these jobs count: rows the phase did not submit (a
    seeded backlog of completed results) are terminal from the start and would end the wait
    before the jobs did."""
    wanted = [uuid.UUID(i) for i in ids]
    query = select(func.count()).where(
        Generation.id.in_(wanted), Generation.status.in_(TERMINAL_VALUES)
    )
    deadline = time.monotonic() + timeout
    while True:
        with sessions() as session:
            ended = int(session.scalar(query) or 0)
        if ended >= len(wanted) or time.monotonic() >= deadline:
            return ended
        time.sleep(0.25)


@dataclass(frozen=True)
class JobRow:
    id: str
    status: str
    upstream_request_id: str | None
    created_at: float
    submitted_at: float | None
    completed_at: float | None
    poll_count: int


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def job_rows(stack: Observed) -> list[JobRow]:
    with stack.sessions() as session:
        rows = session.execute(
            select(
                Generation.id,
                Generation.status,
                Generation.upstream_request_id,
                Generation.created_at,
                Generation.submitted_at,
                Generation.completed_at,
                Generation.poll_count,
            )
        ).all()
    return [
        JobRow(
            id=str(r.id),
            status=str(r.status),
            upstream_request_id=r.upstream_request_id,
            created_at=r.created_at.timestamp(),
            submitted_at=_ts(r.submitted_at),
            completed_at=_ts(r.completed_at),
            poll_count=int(r.poll_count),
        )
        for r in rows
    ]


class PeakSampler:
    """Calls ``gauge`` every ``interval`` seconds in a thread and keeps the largest value."""

    def __init__(self, gauge: Callable[[], float], *, interval: float = 0.5) -> None:
        self.gauge = gauge
        self.interval = interval
        self.peak = 0.0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="peak-sampler", daemon=True)

    def __enter__(self) -> "PeakSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, self.gauge())
                self.samples += 1
            except Exception:  # a missed sample is only a missed sample
                pass
            self._stop.wait(self.interval)


def poll_backlog(stack: Observed) -> float:
    """Seconds the most overdue active row has waited past its ``next_poll_at`` (the same
    reading as the worker's ``genqueue_poll_lag_seconds``)."""
    now = time.time()
    with stack.sessions() as session:
        oldest = session.scalar(
            select(func.min(Generation.next_poll_at)).where(
                Generation.status.in_(["queued", "running"])
            )
        )
    return max(0.0, now - oldest.timestamp()) if oldest is not None else 0.0


def upstream_in_flight(stack: Observed) -> float:
    """Jobs the simulator holds (queued or running) right now."""
    jobs = stack.sim_stats()["jobs"]
    return float(jobs["in_queue"] + jobs["in_progress"])


def sim_requests(
    stack: Observed, request_ids: list[str], *, connections: int = 16
) -> dict[str, Any]:
    """The simulator's record of each upstream request (``/_sim/requests/{id}``)."""
    return asyncio.run(_sim_requests(stack.sim_host, stack.sim_port, request_ids, connections))


async def _sim_requests(
    host: str, port: int, request_ids: list[str], connections: int
) -> dict[str, Any]:
    found: dict[str, Any] = {}
    todo = iter(request_ids)

    async def fetch() -> None:
        conn = Connection(host, port)
        try:
            for request_id in todo:
                answer = await conn.request("GET", f"/_sim/requests/{request_id}")
                if answer.status == 200:
                    found[request_id] = answer.json()
        finally:
            await conn.close()

    await asyncio.gather(*(fetch() for _ in range(connections)))
    return found
