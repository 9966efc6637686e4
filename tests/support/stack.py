"""Real processes for integration tests: the simulator over HTTP, a Celery worker and beat."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from genqueue.net import free_port, wait_until
from genqueue.supervisor import die_with_parent
from models import tasknames
from tests.support.leaks import marked

FLOWER_AUTH = ("operator", "flower-test-pw")
UPSTREAM_KEY = "sim-key-7f3a9c"  # recognisable, so secret-leak checks can grep for it


class SimAdmin:
    """Drive a simulator running in another process through its ``/_sim`` HTTP API."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=10)

    def configure(self, **fields: Any) -> None:
        self.http.post("/_sim/config", json=fields).raise_for_status()

    def add_fault(self, **rule: Any) -> None:
        self.http.post("/_sim/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_sim/faults").raise_for_status()

    def submits(self, marker: str | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.http.get("/_sim/submits").json()
        if marker is None:
            return rows
        return [r for r in rows if marker in str((r.get("body") or {}).get("prompt", ""))]

    def request(self, request_id: str) -> dict[str, Any]:
        info: dict[str, Any] = self.http.get(f"/_sim/requests/{request_id}").json()
        return info

    def close(self) -> None:
        self.http.close()

    def calls(self, request_id: str | None) -> dict[str, int]:
        """How often each op was called for an upstream request (which must have been made)."""
        assert request_id is not None, "never accepted upstream"
        calls: dict[str, int] = self.request(request_id)["calls"]
        return calls


class Process:
    """One process group of a test, started and stopped under a lock: the stack's restart
    thread and the test itself may both reach for it."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.down_on_purpose = False
        self.restarts = 0
        self.lock = threading.RLock()

    def start(self) -> None:
        with self.lock:
            self._end_group(signal.SIGKILL)  # never two: a process replaced is a process leaked
            self.down_on_purpose = False
            with self.log_path.open("ab") as log:
                self.proc = subprocess.Popen(
                    self.argv,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,  # if pytest dies, so does this
                )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children too), wait for it."""
        with self.lock:
            self.down_on_purpose = True
            self._end_group(sig)

    def _end_group(self, sig: int) -> None:
        """End the group, also when its leader is already gone (pool processes outlive it)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # whatever outlived the leader

    def restart(self) -> None:
        with self.lock:
            self.kill()
            self.start()

    def restart_if_died(self) -> bool:
        """Start it again if it exited unasked (what a restart policy does)."""
        with self.lock:
            if not self.died():
                return False
            self.restarts += 1
            self.start()
            return True

    def died(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None and not self.down_on_purpose

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Stack:
    def __init__(
        self,
        *,
        database_url: str,
        broker_url: str,
        extra_env: dict[str, str],
        with_api: bool = False,
        with_flower: bool = False,
        supervise: bool = False,
        upstream_webhooks: bool = False,
    ) -> None:
        self.supervise = supervise
        self._supervisor: threading.Thread | None = None
        self._stopping = threading.Event()
        self.with_api, self.with_flower = with_api, with_flower
        self.api_port, self.flower_port = free_port(), free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.flower_url = f"http://127.0.0.1:{self.flower_port}"
        self.dir = Path(tempfile.mkdtemp(prefix=marked("gq-stack-")))
        self.sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.database_url = database_url
        self.broker_url = broker_url
        (self.dir / "tmp").mkdir()
        self.env = {
            **os.environ,
            # Temporary files too (multiprocessing's pymp-* of a worker killed by a fault
            # test, which no exit handler removes): under the stack's directory, removed at
            # its end.
            "TMPDIR": str(self.dir / "tmp"),
            "GENQUEUE_DATA_DIR": str(self.dir),
            "GENQUEUE_DATABASE_URL": database_url,
            "GENQUEUE_BROKER_URL": broker_url,
            "GENQUEUE_UPSTREAM_URL": self.sim_url,
            "GENQUEUE_UPSTREAM_KEY": UPSTREAM_KEY,
            "GENQUEUE_UPSTREAM_AUTH_SCHEME": "Key",
            "GENQUEUE_TICK_INTERVAL": "0.25",
            "GENQUEUE_RECONCILE_INTERVAL": "1",
            "GENQUEUE_LEASE_SECONDS": "6",
            "GENQUEUE_SUBMIT_GRACE": "2",
            "GENQUEUE_POLL_MIN_DELAY": "0.2",
            "GENQUEUE_POLL_MAX_DELAY": "1",
            "GENQUEUE_ERROR_MIN_DELAY": "0.2",
            "GENQUEUE_ERROR_MAX_DELAY": "2",
            "GENQUEUE_UPSTREAM_READ_TIMEOUT": "2",
            "GENQUEUE_UPSTREAM_CONNECT_TIMEOUT": "2",
            **self._webhook_env(upstream_webhooks),
            # The tests' webhook receivers listen on 127.0.0.1.
            "GENQUEUE_WEBHOOK_ALLOW_PRIVATE": "true",
            # The simulator serves the output files from 127.0.0.1 too.
            "GENQUEUE_MEDIA_ALLOW_PRIVATE": "true",
            # A lost attempt is retried once its lease (3 × this + 10 s) runs out.
            "GENQUEUE_WEBHOOK_TIMEOUT": "2",
            **extra_env,
        }
        py = sys.executable
        self.simulator = Process(
            "simulator",
            [
                py,
                "-m",
                "simulator",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.sim_port),
                "--auth",
                f"Key {UPSTREAM_KEY}",
                "--run-time",
                "1",
                "--capacity",
                "4",
            ],
            self.env,
            self.dir,
        )
        celery_worker = [py, "-m", "celery", "-A", "worker", "worker", "--loglevel", "INFO"]
        quiet = ["--without-mingle", "--without-gossip"]
        # The production shape (compose, `genqueue up`): submits and polls on one worker,
        # client webhook deliveries and media copies on a worker of their own.
        self.worker = Process(
            "worker",
            [
                *celery_worker,
                *("-Q", f"{tasknames.QUEUE},{tasknames.TIMER_QUEUE}"),
                *("--concurrency", "4", "--pool", "prefork"),
                *("-n", f"{marked('gq-test-')}{self.sim_port}@%h", *quiet),
            ],
            self.env,
            self.dir,
        )
        self.webhooks = Process(
            "webhooks",
            [
                *celery_worker,
                *("-Q", f"{tasknames.WEBHOOK_QUEUE},{tasknames.MEDIA_QUEUE}"),
                *("--concurrency", "2", "--pool", "threads"),
                *("-n", f"{marked('gq-test-webhooks-')}{self.sim_port}@%h", *quiet),
            ],
            self.env,
            self.dir,
        )
        self.beat = Process(
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
                str(self.dir / "beat-schedule"),
            ],
            self.env,
            self.dir,
        )
        self.api = Process(
            "api",
            [
                py,
                "-m",
                "uvicorn",
                "api.app:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.api_port),
            ],
            self.env,
            self.dir,
        )
        self.flower = Process(
            "flower",
            [
                py,
                "-m",
                "celery",
                "-A",
                "worker",
                "flower",
                "--address=127.0.0.1",
                f"--port={self.flower_port}",
                f"--basic-auth={FLOWER_AUTH[0]}:{FLOWER_AUTH[1]}",
            ],
            self.env,
            self.dir,
        )
        self.sim = SimAdmin(self.sim_url)

    def _webhook_env(self, on: bool) -> dict[str, str]:
        """fal's webhooks, played by the simulator, to this stack's API (which must run)."""
        if not on:
            return {}
        self.with_api = True
        return {
            "GENQUEUE_UPSTREAM_WEBHOOK_URL": f"{self.api_url}/webhooks/fal",
            "GENQUEUE_FAL_JWKS_URL": f"{self.sim_url}/.well-known/jwks.json",
        }

    @property
    def processes(self) -> list[Process]:
        extra = [p for p, on in ((self.api, self.with_api), (self.flower, self.with_flower)) if on]
        return [self.worker, self.webhooks, self.beat, self.simulator, *extra]

    def start(self) -> None:
        self.simulator.start()
        wait_until(
            lambda: self.sim.http.get("/_sim/stats").status_code == 200, 20, what="simulator"
        )
        self.worker.start()
        self.webhooks.start()
        self.beat.start()
        if self.with_api:
            self.api.start()
            wait_until(
                lambda: httpx.get(f"{self.api_url}/healthz").status_code == 200, 30, what="api"
            )
        if self.with_flower:
            self.flower.start()
        if self.supervise:
            self.supervise_processes()

    def supervise_processes(self) -> None:
        self._supervisor = threading.Thread(target=self._restart_the_dead, daemon=True)
        self._supervisor.start()

    def _restart_the_dead(self) -> None:
        """What a restart policy does in production (compose's ``restart: unless-stopped``,
        ``genqueue up``): a process that exits unasked is started again."""
        while not self._stopping.wait(0.5):
            for proc in self.processes:
                with proc.lock:
                    if self._stopping.is_set():  # stop() may be ending it right now
                        return
                    proc.restart_if_died()

    def stop(self) -> None:
        """Stop restarting first (and wait until the restart thread is done), then end every
        process, so none is started again after it was ended."""
        self._stopping.set()
        if self._supervisor is not None:
            self._supervisor.join(30)
        for proc in reversed(self.processes):
            proc.kill(signal.SIGTERM)
        self.sim.close()

    def logs(self) -> str:
        return "\n".join(f"==== {p.name}\n{p.log()[-6000:]}" for p in self.processes)


@contextmanager
def running_stack(**kwargs: Any) -> Iterator[Stack]:
    stack = Stack(**kwargs)
    try:
        stack.start()  # inside: what started before a failure is stopped too
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(stack.dir, ignore_errors=True)  # logs, beat's schedule, the media store
