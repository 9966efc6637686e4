"""The queue engine: FIFO waiting line, limited run slots, start deadlines — advanced lazily.

Nothing runs in the background: every call brings the state up to the caller's ``now`` by
replaying the events (run ends, start deadlines) that fell due since the last call, in time order.
Costs: submit, advance per event and cancel are O(log n); ``queue_position`` is O(log n) through a
Fenwick tree counting the jobs that already left the waiting line.
"""

import heapq
from collections import deque
from collections.abc import Callable

from simulator.jobs import CANCELLED, TIMED_OUT, Job, JobError, JobState


class _Fenwick:
    """Prefix counts over job sequence numbers; grows by doubling (amortised O(1) per add)."""

    def __init__(self) -> None:
        self._marks = bytearray(1024)
        self._tree = [0] * (len(self._marks) + 1)

    def add(self, index: int) -> None:
        while index >= len(self._marks):
            self._grow()
        self._marks[index] = 1
        i = index + 1
        tree = self._tree
        while i < len(tree):
            tree[i] += 1
            i += i & -i

    def count_below(self, index: int) -> int:
        """How many marked indexes are < ``index``."""
        i = min(index, len(self._marks))
        total = 0
        tree = self._tree
        while i > 0:
            total += tree[i]
            i -= i & -i
        return total

    def _grow(self) -> None:
        self._marks.extend(bytes(len(self._marks)))
        tree = [0, *self._marks]
        for i in range(1, len(tree)):
            parent = i + (i & -i)
            if parent < len(tree):
                tree[parent] += tree[i]
        self._tree = tree


OnEnd = Callable[[Job], None]
OnChange = Callable[[Job], None]
RunTime = Callable[[Job], float]


class JobQueue:
    """Waiting line plus run slots. Not thread-safe: the simulator's lock guards it.

    ``on_change`` (if given) hears of every job that starts or ends, e.g. to store it.
    """

    def __init__(self, run_time: RunTime, on_end: OnEnd, on_change: OnChange | None = None) -> None:
        self._run_time = run_time
        self._on_end = on_end
        self._on_change = on_change
        self._waiting: deque[Job] = deque()
        self._ends: list[tuple[float, int, Job]] = []
        self._deadlines: list[tuple[float, int, Job]] = []
        self._left = _Fenwick()
        self._next_seq = 0
        self.queued = 0
        self.running = 0
        self.completed = 0

    def submit(self, job: Job, now: float, capacity: int | None) -> None:
        job.seq = self._next_seq
        self._next_seq += 1
        self._waiting.append(job)
        self.queued += 1
        if job.deadline is not None:
            heapq.heappush(self._deadlines, (job.deadline, job.seq, job))
        self._fill(now, capacity)

    def restore(self, jobs: list[Job]) -> None:
        """Take back the jobs of an earlier run, in their order (their ``seq``), as they
        were: waiting, running or ended. Call :meth:`advance` next to catch up."""
        for job in sorted(jobs, key=lambda j: j.seq):
            state = job.state
            if state is JobState.COMPLETED:
                self.completed += 1
                continue
            job.seq = self._next_seq
            self._next_seq += 1
            if state is JobState.IN_PROGRESS:
                self._left.add(job.seq)
                self.running += 1
                assert job.end_due is not None
                heapq.heappush(self._ends, (job.end_due, job.seq, job))
                continue
            self._waiting.append(job)
            self.queued += 1
            if job.deadline is not None:
                heapq.heappush(self._deadlines, (job.deadline, job.seq, job))

    def position(self, job: Job) -> int:
        """Jobs waiting ahead of a waiting ``job`` (0 = next to start)."""
        return job.seq - self._left.count_below(job.seq)

    def advance(self, now: float, capacity: int | None) -> None:
        """Replay every run end and start deadline due at or before ``now``."""
        ends, deadlines = self._ends, self._deadlines
        while True:
            while ends and ends[0][2].ended is not None:
                heapq.heappop(ends)  # stale: the job was cancelled while running
            while deadlines and deadlines[0][2].state is not JobState.IN_QUEUE:
                heapq.heappop(deadlines)  # it started or was cancelled in time
            next_end = ends[0][0] if ends else None
            next_deadline = deadlines[0][0] if deadlines else None
            if (
                next_end is not None
                and next_end <= now
                and (next_deadline is None or next_end <= next_deadline)
            ):
                at, _, job = heapq.heappop(ends)
                self.running -= 1
                self._finish(job, at, job.fail_with)
                self._fill(at, capacity)
            elif next_deadline is not None and next_deadline <= now:
                at, _, job = heapq.heappop(deadlines)
                self._leave_line(job)
                self._finish(job, at, TIMED_OUT)
            else:
                break
        self._fill(now, capacity)

    def cancel(self, job: Job, now: float, capacity: int | None, honor: bool) -> bool:
        """Cancel a job that is not COMPLETED; returns whether it ended at once."""
        job.cancel_requested = True
        if job.state is JobState.IN_QUEUE:
            self._leave_line(job)
            self._finish(job, now, CANCELLED)
            return True
        if honor:
            self.running -= 1
            self._finish(job, now, CANCELLED)
            self._fill(now, capacity)
            return True
        return False

    def _leave_line(self, job: Job) -> None:
        """Take a waiting job out of line; its deque entry is skipped later."""
        self._left.add(job.seq)
        self.queued -= 1

    def _fill(self, at: float, capacity: int | None) -> None:
        waiting = self._waiting
        while waiting and (not capacity or self.running < capacity):
            job = waiting.popleft()
            if job.state is not JobState.IN_QUEUE:
                continue  # cancelled or timed out while waiting
            self._left.add(job.seq)
            self.queued -= 1
            self.running += 1
            job.started = at
            job.end_due = at + self._run_time(job)
            heapq.heappush(self._ends, (job.end_due, job.seq, job))
            if self._on_change is not None:
                self._on_change(job)

    def _finish(self, job: Job, at: float, error: JobError | None) -> None:
        job.ended = at
        job.error = error
        self.completed += 1
        self._on_end(job)
        if self._on_change is not None:
            self._on_change(job)
