"""The real stack a benchmark runs against, one process each: the simulator, the API
(``genqueue api``), the worker (``genqueue worker``), beat (``genqueue beat``), and the baseline
Celery worker. Phases start and stop the processes they measure, so nothing idles beside them."""

import os
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from celery import Celery
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.processes import Proc, stop_all
from benchmarks.services import flush_broker
from genqueue.net import free_port, wait_until
from models.db import make_engine, make_session_factory
from models.keys import create_key
from models.tables import Generation

SIM_KEY = "bench-sim-key-5c1e0d"
"""The simulator's upstream key: loopback only, recognisable in logs."""
PY = sys.executable


@dataclass(frozen=True)
class WorkerSettings:
    """The worker settings under test (the README's recommendation unless overridden)."""

    concurrency: int = 2
    pool: str = "prefork"
    poll_batch_size: int = 50
    tick_interval: float = 1.0
    api_workers: int = 2
    """API processes (``genqueue api --workers``): one per core, as the README recommends."""

    def env(self) -> dict[str, str]:
        return {
            "GENQUEUE_POLL_BATCH_SIZE": str(self.poll_batch_size),
            "GENQUEUE_TICK_INTERVAL": str(self.tick_interval),
        }

    def celery_args(self, name: str) -> list[str]:
        return [
            "--concurrency",
            str(self.concurrency),
            "--pool",
            self.pool,
            "-n",
            f"{name}@%h",
            "--without-mingle",
            "--without-gossip",
        ]

    def describe(self) -> dict[str, Any]:
        return asdict(self)


class StackState:
    """What a benchmark reads and resets of a running stack, one host's or a cluster's: its
    database (``sessions``) and the simulator's admin routes (``sim``)."""

    sessions: sessionmaker[Session]
    sim: httpx.Client

    def empty(self, **sim_config: Any) -> None:
        """Empty the generations and the simulator; configure the simulator."""
        with self.sessions.begin() as session:
            session.execute(
                text("TRUNCATE webhook_deliveries, generation_events, media_files, generations")
            )
        self.sim.post("/_sim/reset").raise_for_status()
        if sim_config:
            self.sim.post("/_sim/config", json=sim_config).raise_for_status()

    def status_counts(self) -> dict[str, int]:
        query = select(Generation.status, func.count()).group_by(Generation.status)
        with self.sessions() as session:
            rows = session.execute(query).all()
        return {str(status): int(n) for status, n in rows}

    def sim_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self.sim.get("/_sim/stats").json()
        return stats

    def sim_submits(self) -> list[dict[str, Any]]:
        submits: list[dict[str, Any]] = self.sim.get("/_sim/submits").json()
        return submits


class Stack(StackState):
    def __init__(
        self, *, database_url: str, broker_url: str, worker: WorkerSettings, log_dir: Path
    ) -> None:
        self.database_url, self.broker_url, self.settings = database_url, broker_url, worker
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.sim_host = "127.0.0.1"
        self.sim_port, self.api_port = free_port(), free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("GENQUEUE_", "FAL_"))}
        self.env = {
            **inherited,
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "GENQUEUE_DATA_DIR": str(log_dir / "data"),
            "GENQUEUE_DATABASE_URL": database_url,
            "GENQUEUE_BROKER_URL": broker_url,
            "GENQUEUE_UPSTREAM_URL": self.sim_url,
            "GENQUEUE_UPSTREAM_KEY": SIM_KEY,
            "GENQUEUE_UPSTREAM_AUTH_SCHEME": "Key",
            "GENQUEUE_FAL_JWKS_URL": f"{self.sim_url}/.well-known/jwks.json",
            **worker.env(),
        }
        self.simulator = self._proc(
            "simulator",
            [
                *("-m", "simulator", "--port", str(self.sim_port), "--auth", f"Key {SIM_KEY}"),
                *("--run-time", "0", "--capacity", "0", "--log-level", "warning"),
            ],
        )
        self.api = self._proc(
            "api",
            [
                *("-m", "genqueue", "api", "--host", "127.0.0.1", "--port", str(self.api_port)),
                *("--workers", str(worker.api_workers)),
            ],
        )
        self.worker = self._proc(
            "worker", ["-m", "genqueue", "worker", *worker.celery_args(f"bench-{self.api_port}")]
        )
        self.beat = self._proc("beat", ["-m", "genqueue", "beat"])
        self.baseline = self._proc(
            "baseline-worker",
            [
                *("-m", "celery", "-A", "benchmarks.baseline_app", "worker"),
                *worker.celery_args(f"baseline-{self.api_port}"),
            ],
        )
        self.engine = make_engine(database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.sim = httpx.Client(base_url=self.sim_url, timeout=30)
        self._control = Celery("bench-control", broker=broker_url, set_as_current=False)

    def _proc(self, name: str, args: list[str]) -> Proc:
        return Proc(name, [PY, *args], self.env, self.log_dir)

    # -- processes -------------------------------------------------------------------------
    def start_simulator(self) -> None:
        self.simulator.start()
        wait_until(lambda: self.sim.get("/_sim/health").is_success, 30, what="the simulator")

    def start_api(self) -> None:
        self.api.start()
        wait_until(
            lambda: httpx.get(f"{self.api_url}/healthz", timeout=2).is_success,
            60,
            what=f"the API\n{self.api.tail()}",
        )

    def start_workers(
        self, *, webhooks: bool = False, safety_net: tuple[float, float] | None = None
    ) -> None:
        """The genqueue worker and beat; returns once the worker answers a ping. With
        ``webhooks`` every submit asks for fal's webhook (to this stack's API); ``safety_net``
        is (margin, interval) of the polls of such jobs."""
        env = dict(self.env)
        if webhooks:
            env["GENQUEUE_UPSTREAM_WEBHOOK_URL"] = f"{self.api_url}/webhooks/fal"
        if safety_net is not None:
            env["GENQUEUE_WEBHOOK_POLL_MARGIN"] = str(safety_net[0])
            env["GENQUEUE_WEBHOOK_POLL_INTERVAL"] = str(safety_net[1])
        self.worker.env = env
        self.worker.start()
        self._wait_worker(self.worker)
        self.beat.start()

    def stop_workers(self) -> None:
        stop_all([self.beat, self.worker])

    def start_baseline(self) -> None:
        self.baseline.start()
        self._wait_worker(self.baseline)

    def stop_baseline(self) -> None:
        self.baseline.stop(grace=10)

    def _wait_worker(self, proc: Proc) -> None:
        def answers() -> bool:
            if not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
            return bool(self._control.control.ping(timeout=0.25))

        wait_until(answers, 60, interval=0.1, what=f"{proc.name} to answer a ping")

    def close(self) -> None:
        stop_all([self.baseline, self.beat, self.worker, self.api, self.simulator], grace=5)
        self.sim.close()
        self._control.close()
        self.engine.dispose()

    # -- state -----------------------------------------------------------------------------
    def reset(self, **sim_config: Any) -> None:
        """Empty the generations, the broker and the simulator; configure the simulator."""
        self.empty(**sim_config)
        flush_broker(self.broker_url)

    def new_key(self, name: str) -> str:
        with self.sessions.begin() as session:
            _, plain = create_key(session, name=f"{name}-{socket.gethostname()}-{self.api_port}")
        return plain
