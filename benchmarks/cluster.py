"""genqueue over five hosts on one machine, for the distributed benchmark (``d1_distributed``):
Linux network namespaces joined by veth pairs (``sandbox.netns``, as the multi-host fault suite
builds them), every process inside its host, this process the observer on both networks.

- ``data``: a PostgreSQL cluster and a redis-server of the run's own, and, once asked for, a
  RabbitMQ node of its own (the machine's services listen on its loopback, which no other
  namespace reaches);
- ``api``: the API (``genqueue api``) and beat;
- ``w1``, ``w2``: a genqueue worker each, started per phase (one host or both);
- ``upstream``: the simulator, whose call log names the calling host of every call.

The hosts share the machine's cores: two worker hosts are a second machine's worth of
processes, not of CPU."""

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
from celery import Celery
from sqlalchemy.orm import Session, sessionmaker

from benchmarks.budget import CpuBudget, cpu_sampler
from benchmarks.processes import Proc, TreeSampler, stop_all
from benchmarks.stack import SIM_KEY, StackState, WorkerSettings
from genqueue.net import wait_until
from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from models.keys import create_key
from sandbox.netns import HOSTS, WORKER_HOSTS, Sandbox
from sandbox.rabbitmq import RabbitMQServer
from sandbox.servers import PostgresServer, RedisServer

SIM_PORT, API_PORT = 8900, 8000
DATABASE = "gq_d1"
"""One name: it shows in the title of every PostgreSQL backend that serves the run."""
PY = sys.executable


class Cluster(StackState):
    """The hosts, their processes per broker, and what a phase reads of them."""

    def __init__(self, sandbox: Sandbox, settings: WorkerSettings, log_dir: Path) -> None:
        self.sandbox, self.settings, self.log_dir = sandbox, settings, log_dir
        self.data = sandbox.hosts["data"]
        self._servers = ExitStack()
        try:
            self.pg: PostgresServer = self._server(PostgresServer(**self._on_data("gq-d1-pg-")))
            self.redis: RedisServer = self._server(RedisServer(**self._on_data("gq-d1-redis-")))
            with psycopg.connect(self.pg.admin_url, autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            self.database_url = self.pg.admin_url.rsplit("/", 1)[0] + f"/{DATABASE}"
            upgrade(self.database_url)
        except BaseException:
            self._servers.close()
            raise
        self.rabbitmq: RabbitMQServer | None = None
        self.engine = make_engine(self.database_url)
        self.sessions: sessionmaker[Session] = make_session_factory(self.engine)
        self.sim_host, self.sim_port = sandbox.address("upstream", "front"), SIM_PORT
        self.api_host, self.api_port = sandbox.address("api"), API_PORT
        self.sim = httpx.Client(base_url=f"http://{self.sim_host}:{SIM_PORT}", timeout=30)
        self.broker = "redis"
        self.broker_url = self.redis.url
        self.procs: dict[str, Proc] = {}
        """The API, beat and the workers, of the broker in use."""
        self._control: Celery | None = None
        args = ["-m", "simulator", "--host", self.sim_host, "--port", str(SIM_PORT)]
        args += ["--auth", f"Key {SIM_KEY}", "--run-time", "0", "--capacity", "0"]
        self.simulator = self._proc("upstream", "simulator", [*args, "--log-level", "warning"])

    def _on_data(self, prefix: str) -> dict[str, Any]:
        return {"host": self.sandbox.address("data"), "wrap": self.data.wrap([]), "prefix": prefix}

    def _server(self, server: Any) -> Any:
        self._servers.callback(server.close)
        server.start()
        return server

    # -- processes ---------------------------------------------------------------------------
    def _env(self, host: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith(("GENQUEUE_", "FAL_"))}
        return {
            **inherited,
            "PYTHONPATH": str(Path(__file__).resolve().parent.parent),
            "GENQUEUE_DATA_DIR": str(self.log_dir / f"data-{host}"),
            "GENQUEUE_DATABASE_URL": self.database_url,
            "GENQUEUE_BROKER_URL": self.broker_url,
            "GENQUEUE_UPSTREAM_URL": f"http://{self.sim_host}:{SIM_PORT}",
            "GENQUEUE_UPSTREAM_KEY": SIM_KEY,
            "GENQUEUE_UPSTREAM_AUTH_SCHEME": "Key",
            **self.settings.env(),
        }

    def _proc(self, host: str, name: str, args: list[str]) -> Proc:
        argv = self.sandbox.hosts[host].wrap([PY, *args])
        return Proc(f"{self.broker}-{name}", argv, self._env(host), self.log_dir)

    def use_broker(self, broker: str) -> None:
        """Run the API, beat and the workers on ``broker`` (``redis`` or ``rabbitmq``, whose
        node starts on the data host the first time), the API started again on it."""
        if broker == self.broker and "api" in self.procs and self.procs["api"].alive():
            return
        self.stop_workers()
        stop_all([p for name, p in self.procs.items() if name == "api"])
        if broker == "rabbitmq":
            self.boot_rabbitmq()
            assert self.rabbitmq is not None
            self.rabbitmq.wait_ready()
        self.broker = broker
        self.broker_url = self.redis.url
        if broker == "rabbitmq" and self.rabbitmq is not None:
            self.broker_url = self.rabbitmq.url
        if self._control is not None:
            self._control.close()
        self._control = Celery("d1-control", broker=self.broker_url, set_as_current=False)
        api = ["-m", "genqueue", "api", "--host", self.api_host, "--port", str(API_PORT)]
        self.procs = {
            "api": self._proc("api", "api", [*api, "--workers", str(self.settings.api_workers)]),
            "beat": self._proc("api", "beat", ["-m", "genqueue", "beat"]),
        }
        for host in WORKER_HOSTS:
            args = ["-m", "genqueue", "worker", *self.settings.celery_args(f"d1-{host}")]
            self.procs[host] = self._proc(host, f"worker-{host}", args)
        self.procs["api"].start()
        url = f"http://{self.api_host}:{API_PORT}/healthz"
        wait_until(lambda: httpx.get(url, timeout=2).is_success, 90, what="the API")

    def boot_rabbitmq(self) -> None:
        """Start the RabbitMQ node on the data host (once), in the background: it boots in
        10-20 s, which a short run spends on something else (its CPU is then the machine's
        too, so a measurement does not overlap it)."""
        if self.rabbitmq is not None:
            return
        self.rabbitmq = RabbitMQServer(**self._on_data("gq-d1-rabbitmq-"))
        self._servers.callback(self.rabbitmq.close)
        self.rabbitmq.launch()

    def start_simulator(self) -> None:
        self.simulator.start()
        wait_until(lambda: self.sim.get("/_sim/health").is_success, 30, what="the simulator")

    def start_workers(self, hosts: tuple[str, ...]) -> None:
        """Beat (first, so that it has booted by the time the workers have), then a worker on
        each of ``hosts``; returns once every one of them answers a ping."""
        self.procs["beat"].start()
        for host in hosts:
            self.procs[host].start()
        for host in hosts:
            name = f"d1-{host}@{socket.gethostname()}"
            wait_until(partial(self._answers, self.procs[host], name), 90, interval=0.2, what=name)

    def _answers(self, proc: Proc, name: str) -> bool:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        assert self._control is not None
        return bool(self._control.control.ping(destination=[name], timeout=0.5))

    def stop_workers(self) -> None:
        stop_all([p for name, p in self.procs.items() if name == "beat" or name in WORKER_HOSTS])

    def running_workers(self) -> list[str]:
        return [host for host in WORKER_HOSTS if host in self.procs and self.procs[host].alive()]

    def budget(self) -> CpuBudget:
        """Where the machine's CPU goes: each host's processes, this database's backends, the
        broker's server."""
        if self.broker == "rabbitmq":
            assert self.rabbitmq is not None
            broker = cpu_sampler([], str(self.rabbitmq.dir))
        else:
            broker = cpu_sampler([], f":{self.redis.port}")
        workers = {f"worker {h}": TreeSampler([self.procs[h].pid]) for h in self.running_workers()}
        return CpuBudget(
            {
                "api": cpu_sampler([self.procs["api"].pid]),
                **workers,
                "beat": cpu_sampler([self.procs["beat"].pid]),
                "simulator": cpu_sampler([self.simulator.pid]),
                "postgres": cpu_sampler([], f" {DATABASE} "),
                self.broker: broker,
            }
        )

    # -- state -------------------------------------------------------------------------------
    def reset(self, **sim_config: Any) -> None:
        """Empty the generations and the simulator; configure the simulator. The broker is
        left as it is: a phase ends with every job terminal, and a message about a row that is
        gone is dropped by the worker that takes it."""
        self.empty(**sim_config)

    def new_key(self, name: str) -> str:
        with self.sessions.begin() as session:
            _, plain = create_key(session, name=f"{name}-{self.broker}-{os.getpid()}")
        return plain

    def host_of(self, address: str | None) -> str:
        for name, host in self.sandbox.hosts.items():
            if address in host.addresses.values():
                return name
        return "observer" if address in self.sandbox.observer_addresses else f"? {address}"

    def close(self) -> None:
        stop_all([*self.procs.values(), self.simulator], grace=5)
        if self._control is not None:
            self._control.close()
        self.sim.close()
        self.engine.dispose()
        self._servers.close()


@contextmanager
def cluster(
    settings: WorkerSettings, log_dir: Path, *, rabbitmq_early: bool = False
) -> Iterator[Cluster]:
    """The hosts with their data services and the simulator up (on Redis until told
    otherwise); everything, namespaces included, gone afterwards. ``rabbitmq_early`` boots
    the RabbitMQ node at once, beside whatever runs first (the smoke test's shortcut)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(HOSTS)
    try:
        running = Cluster(sandbox, settings, log_dir)
        try:
            if rabbitmq_early:
                running.boot_rabbitmq()
            running.start_simulator()
            running.use_broker("redis")
            yield running
        finally:
            running.close()
    finally:
        sandbox.close()
        left = sandbox.leftovers()
        if left:
            raise RuntimeError(f"the sandbox left {left} behind")
