"""genqueue spread over five hosts on one machine (network namespaces, ``sandbox/netns``):

- ``data``: a PostgreSQL cluster and a redis-server of this run's own, started inside the host
  (the machine's own services listen on its loopback, which another namespace cannot reach, and
  the faults must cut the path to them, so the data host runs its own);
- ``api``: the API (uvicorn) and beat;
- ``w1``, ``w2``: a Celery worker each (submits and polls), on both networks; ``w1``'s clock
  runs ``SKEW`` ahead (libfaketime), so leases pass between hosts that disagree on the time
  (the faults strike ``w1``; each test first waits until ``w1`` has taken some of its jobs);
- ``upstream``: the simulator, on the front network only.

``GENQUEUE_MULTIHOST_SCALE=full`` runs more jobs per fault than CI's default ``ci``."""

import os
import sys
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from genqueue.net import wait_until
from migrations.runner import upgrade
from models import tasknames
from models.db import make_engine, make_session_factory
from models.keys import create_key
from sandbox.netns import FAKETIME_LIB, HOSTS, WORKER_HOSTS, Sandbox
from tests.support.jobs import Jobs
from tests.support.leaks import marked
from tests.support.rabbitmq import publisher_app
from tests.support.services import PostgresServer, RedisServer
from tests.support.stack import UPSTREAM_KEY, Process, SimAdmin

SCALES = {"ci": 12, "full": 80}
SCALE = os.environ.get("GENQUEUE_MULTIHOST_SCALE", "ci")
if SCALE not in SCALES:
    raise RuntimeError(f"GENQUEUE_MULTIHOST_SCALE must be one of {sorted(SCALES)}, not {SCALE!r}")
JOBS = SCALES[SCALE]
"""Jobs per fault."""

SKEW = "+3s"
LEASE_SECONDS = 10.0
SIM_PORT, API_PORT = 8900, 8000


class Cluster:
    """The hosts, their processes and the faults a test injects."""

    def __init__(self, sandbox: Sandbox, pg: PostgresServer, broker: RedisServer, db: str) -> None:
        self.sandbox = sandbox
        self.database_url = pg.admin_url.rsplit("/", 1)[0] + f"/{db}"
        self.broker_url = broker.url
        self.sim_url = f"http://{sandbox.address('upstream', 'front')}:{SIM_PORT}"
        self.api_url = f"http://{sandbox.address('api')}:{API_PORT}"
        self.dir = pg.dir  # logs beside the data host's files, removed with them
        (Path(self.dir) / "tmp").mkdir(exist_ok=True)
        env = {
            **os.environ,
            "TMPDIR": str(Path(self.dir) / "tmp"),  # a killed process's temp files: removed too
            "GENQUEUE_DATA_DIR": self.dir,
            "GENQUEUE_DATABASE_URL": self.database_url,
            "GENQUEUE_BROKER_URL": self.broker_url,
            "GENQUEUE_UPSTREAM_URL": self.sim_url,
            "GENQUEUE_UPSTREAM_KEY": UPSTREAM_KEY,
            "GENQUEUE_UPSTREAM_AUTH_SCHEME": "Key",
            "GENQUEUE_TICK_INTERVAL": "0.25",
            "GENQUEUE_RECONCILE_INTERVAL": "1",
            "GENQUEUE_LEASE_SECONDS": str(LEASE_SECONDS),
            "GENQUEUE_SUBMIT_GRACE": "2",
            "GENQUEUE_POLL_MIN_DELAY": "0.2",
            "GENQUEUE_POLL_MAX_DELAY": "1",
            "GENQUEUE_ERROR_MIN_DELAY": "0.2",
            "GENQUEUE_ERROR_MAX_DELAY": "2",
            "GENQUEUE_UPSTREAM_READ_TIMEOUT": "2",
            "GENQUEUE_UPSTREAM_CONNECT_TIMEOUT": "2",
            # A connection to the data host that hangs (a cut cable) is given up in seconds.
            "PGCONNECT_TIMEOUT": "3",
        }
        py = sys.executable
        logs = Path(self.dir)

        def on(
            host: str, name: str, argv: list[str], extra: dict[str, str] | None = None
        ) -> Process:
            wrapped = self.sandbox.hosts[host].wrap(argv)
            return Process(f"{host}-{name}", wrapped, {**env, **(extra or {})}, logs)

        upstream = sandbox.address("upstream", "front")
        self.processes: dict[str, list[Process]] = {
            "upstream": [
                on(
                    "upstream",
                    "simulator",
                    [
                        py,
                        "-m",
                        "simulator",
                        "--host",
                        upstream,
                        "--port",
                        str(SIM_PORT),
                        "--auth",
                        f"Key {UPSTREAM_KEY}",
                        "--run-time",
                        "1",
                        "--capacity",
                        "4",
                    ],
                )
            ],
            "api": [
                on(
                    "api",
                    "api",
                    [
                        py,
                        "-m",
                        "uvicorn",
                        "api.app:app",
                        "--host",
                        sandbox.address("api"),
                        "--port",
                        str(API_PORT),
                    ],
                ),
                on(
                    "api",
                    "beat",
                    [
                        py,
                        "-m",
                        "celery",
                        "-A",
                        "worker",
                        "beat",
                        "--loglevel",
                        "INFO",
                        "--schedule",
                        f"{self.dir}/beat-schedule",
                    ],
                ),
            ],
        }
        skewed = {
            "LD_PRELOAD": FAKETIME_LIB,
            "FAKETIME": SKEW,
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # skew is of the wall clock
        }
        for host in WORKER_HOSTS:
            argv = [py, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO"]
            argv += ["-Q", f"{tasknames.QUEUE},{tasknames.TIMER_QUEUE}"]
            argv += ["--concurrency", "2", "--pool", "prefork"]
            argv += ["-n", f"{marked('gq-mh-')}{host}@%h", "--without-mingle", "--without-gossip"]
            extra = skewed if host == "w1" else None
            self.processes[host] = [on(host, "worker", argv, extra)]
        self.sim = SimAdmin(self.sim_url)

    def start(self) -> None:
        for host in ("upstream", "api", *WORKER_HOSTS):
            self.power_on(host)
        wait_until(
            lambda: self.sim.http.get("/_sim/stats").status_code == 200, 30, what="simulator"
        )
        wait_until(lambda: httpx.get(f"{self.api_url}/healthz").status_code == 200, 60, what="api")

    def power_off(self, host: str) -> list[int]:
        """Every process of the host SIGKILLed at once, as a machine that loses power."""
        pids = self.sandbox.power_off(host)
        for proc in self.processes[host]:
            proc.kill()  # already dead: reaped and marked down
        return pids

    def power_on(self, host: str) -> None:
        """Start the host's processes; a worker host is on once its worker says it is ready
        (Celery boots in seconds to tens of seconds on a busy machine)."""
        for proc in self.processes[host]:
            ready = proc.log().count(" ready.")
            proc.start()
            if host in WORKER_HOSTS:
                wait_until(partial(_readier, proc, ready), 90, what=proc.name)

    def host_of(self, address: str | None) -> str:
        for name, host in self.sandbox.hosts.items():
            if address in host.addresses.values():
                return name
        if address in self.sandbox.observer_addresses:
            return "observer"  # this test, checking results
        return f"? {address}"

    def stop(self) -> None:
        for procs in self.processes.values():
            for proc in procs:
                proc.kill()
        self.sim.close()

    def logs(self) -> str:
        return "\n".join(
            f"==== {p.name}\n{p.log()[-5000:]}" for procs in self.processes.values() for p in procs
        )


def _readier(proc: Process, ready: int) -> bool:
    """Whether the worker logged "ready." more often than ``ready`` times (it booted again)."""
    return proc.log().count(" ready.") > ready


@pytest.fixture(scope="package")
def cluster() -> Iterator[Cluster]:
    sandbox = Sandbox(HOSTS, faketime=True)
    data = sandbox.hosts["data"]
    pg: PostgresServer | None = None
    broker: RedisServer | None = None
    running: Cluster | None = None
    try:  # whatever started before a failure is stopped too, and the sandbox goes last
        pg = PostgresServer(host=sandbox.address("data"), wrap=data.wrap([]))
        pg.start()
        broker = RedisServer(host=sandbox.address("data"), wrap=data.wrap([]))
        broker.start()
        db = f"gq_mh_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{db}"')
        running = Cluster(sandbox, pg, broker, db)
        upgrade(running.database_url)
        running.start()
        yield running
    finally:
        if running is not None:
            running.stop()
        if broker is not None:
            broker.close()
        if pg is not None:
            pg.close()
        sandbox.close()
        left = sandbox.leftovers()
        assert not left, f"the sandbox left {left} behind"


class HostJobs(Jobs):
    """Jobs submitted through the API host, as a client would."""

    def __init__(self, cluster: Cluster) -> None:
        self.engine = make_engine(cluster.database_url)
        sessions = make_session_factory(self.engine)
        self.publisher = publisher_app("genqueue-multihost", cluster.broker_url)
        super().__init__(sessions, self.publisher, cluster)
        with sessions.begin() as session:
            _, key = create_key(session, name=f"mh-{self.marker}")
        self.api = httpx.Client(
            base_url=cluster.api_url, timeout=10, headers={"Authorization": f"Bearer {key}"}
        )

    def submit(self, prompt: str, **input: Any) -> uuid.UUID:
        response = self.api.post(
            "/v1/generations",
            json={
                "model": "fal-ai/flux-pro/kontext/text-to-image",
                "input": {"prompt": f"{prompt} [{self.marker}]", **input},
            },
        )
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["id"])

    def close(self) -> None:
        self.api.close()
        self.publisher.close()
        self.engine.dispose()


@pytest.fixture
def jobs(cluster: Cluster) -> Iterator[HostJobs]:
    for host in ("upstream", "api", *WORKER_HOSTS):  # a test's fault is mended by the next
        if any(p.proc is None or p.proc.poll() is not None for p in cluster.processes[host]):
            cluster.power_on(host)
    cluster.sim.clear_faults()
    cluster.sim.configure(run_time=1.0, capacity=4)
    jobs = HostJobs(cluster)
    try:
        yield jobs
    finally:
        jobs.close()
