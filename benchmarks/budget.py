"""Where the machine's CPU went during a phase, by component: the API, the worker, beat, the
simulator, this database's PostgreSQL backends, the Redis server, this process (the client that
POSTs, and the samplers) and everything else on the machine (other tenants, the kernel)."""

import os
import time
from contextlib import ExitStack
from urllib.parse import urlsplit

import psutil

from benchmarks.processes import TreeSampler
from benchmarks.stack import Stack


class CpuBudget:
    """CPU seconds of each component (a sampler each) and of the whole machine while open."""

    def __init__(self, samplers: dict[str, TreeSampler]) -> None:
        self.samplers = {
            **samplers,
            "benchmark process": TreeSampler(
                [os.getpid()], interval=1.0, memory=False, children=False
            ),
        }
        self._stack = ExitStack()
        self._start: float = 0.0
        self._began: float = 0.0
        self.machine_seconds = 0.0
        self.wall_seconds = 0.0

    def __enter__(self) -> "CpuBudget":
        self._start = machine_busy_seconds()
        self._began = time.monotonic()
        for sampler in self.samplers.values():
            self._stack.enter_context(sampler)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()
        self.machine_seconds = machine_busy_seconds() - self._start
        self.wall_seconds = time.monotonic() - self._began

    def per_item_ms(self, items: int) -> dict[str, float]:
        """CPU milliseconds per item (e.g. per generation) by component, and in total."""
        if items <= 0:
            return {}
        spent = {name: s.usage.cpu_seconds for name, s in self.samplers.items()}
        spent["other (machine)"] = max(0.0, self.machine_seconds - sum(spent.values()))
        spent["total (machine)"] = self.machine_seconds
        return {name: round(1000 * seconds / items, 2) for name, seconds in spent.items()}

    @property
    def machine_busy_percent(self) -> float:
        cores = psutil.cpu_count() or 1
        return 100 * self.machine_seconds / (self.wall_seconds * cores) if self.wall_seconds else 0


def stack_budget(stack: Stack) -> CpuBudget:
    """The budget of one host's stack: each of its processes, its database's PostgreSQL
    backends and the Redis server."""
    database = urlsplit(stack.database_url).path.lstrip("/")
    redis_port = urlsplit(stack.broker_url).port or 6379
    return CpuBudget(
        {
            "api": cpu_sampler([stack.api.pid]),
            "worker": TreeSampler([stack.worker.pid]),
            "beat": cpu_sampler([stack.beat.pid]),
            "simulator": cpu_sampler([stack.simulator.pid]),
            "postgres": cpu_sampler([], f" {database} "),
            "redis": cpu_sampler([], f":{redis_port}"),
        }
    )


def cpu_sampler(pids: list[int], cmdline_match: str | None = None) -> TreeSampler:
    return TreeSampler(pids, interval=1.0, cmdline_match=cmdline_match, memory=False)


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores)."""
    times = psutil.cpu_times()
    kernel = getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)
    return float(times.user + getattr(times, "nice", 0.0) + times.system + kernel)
