"""How big each benchmark is: the issue's sizes (``FULL``), ``--quick``, and the smoke test's."""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Scale:
    name: str
    submit_concurrency: int = 32
    """Client connections that POST generations in B1 and B2."""
    warmup_jobs: int = 50
    """Generations (and no-op tasks) run before a measurement so every pool process is warm."""

    b1_jobs: int = 2000
    b1_noop_tasks: int = 2000

    b2_jobs: int = 5000
    b2_run_time: float = 60.0
    b2_history_jobs: int = 20
    """Jobs of the same model run (and timed, cold) before the measured wave, so the worker
    has the run-time history a running system has; 0 measures a cold start only."""
    b2_naive_jobs_per_slot: int = 2
    """Naive baseline: jobs per worker slot (so this many waves), at ``b2_naive_run_time``."""
    b2_naive_run_time: float = 10.0
    b2_naive_interval: float = 1.0
    """Naive baseline: seconds its ``while`` loop sleeps between status calls."""
    b2_falclient_threads: int = 20
    b2_falclient_run_time: float = 60.0

    b4_jobs: int = 5000
    b4_drop: float = 0.3
    """Share of webhooks the simulator drops in B4's last phase."""
    b4_safety_net: tuple[float, float] | None = None
    """(``webhook_poll_margin``, ``webhook_poll_interval``); None: the settings' defaults."""

    b3_levels: tuple[int, ...] = (50, 200)
    b3_seconds: float = 10.0
    b3_warmup: float = 2.0
    b3_max_requests: int = 50_000

    b5_cap: int = 4
    b5_run_time: float = 1.0
    b5_flood_jobs: int = 300
    b5_small_jobs: int = 60
    b5_threads: int = 4
    """Worker slots running the lifecycle's tasks at once."""
    b5_tick: float = 0.05
    """Seconds between dispatch ticks."""

    phase_timeout: float = 900.0
    """No phase waits longer than this for its jobs (seconds)."""
    sample_interval: float = 1.0
    """Seconds between samples of B2's in-flight count and poll backlog: short enough to see a
    wave whose jobs all run ``b2_run_time``."""

    def describe(self) -> dict[str, Any]:
        return asdict(self)


FULL = Scale(name="full")

QUICK = Scale(
    name="quick",
    warmup_jobs=20,
    b1_jobs=500,
    b1_noop_tasks=500,
    b2_jobs=1000,
    b2_run_time=15.0,
    b2_naive_run_time=5.0,
    b2_falclient_threads=10,
    b2_falclient_run_time=15.0,
    b4_jobs=1000,
    b3_seconds=4.0,
    b3_warmup=1.0,
    b5_run_time=0.5,
    b5_flood_jobs=120,
    b5_small_jobs=30,
    phase_timeout=300.0,
)

TOY = Scale(
    name="toy",
    submit_concurrency=8,
    warmup_jobs=0,
    b1_jobs=20,
    b1_noop_tasks=20,
    b2_jobs=20,
    b2_run_time=0.5,
    b2_history_jobs=5,
    b2_naive_jobs_per_slot=1,
    b2_naive_run_time=0.5,
    b2_naive_interval=0.1,
    b2_falclient_threads=4,
    b2_falclient_run_time=0.5,
    b4_jobs=20,
    b4_safety_net=(0.5, 1.0),
    b3_levels=(4, 8),
    b3_seconds=0.5,
    b3_warmup=0.2,
    b3_max_requests=500,
    b5_cap=2,
    b5_run_time=0.2,
    b5_flood_jobs=12,
    b5_small_jobs=4,
    phase_timeout=60.0,
    sample_interval=0.05,
)
