"""Real processes for integration tests: the simulator over HTTP, a Celery worker and beat."""

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.support.services import free_port, wait_until

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


class Process:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the whole process group (a prefork worker's children too)."""
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def restart(self) -> None:
        self.kill()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Stack:
    def __init__(self, *, database_url: str, broker_url: str, extra_env: dict[str, str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="gq-stack-"))
        self.sim_port = free_port()
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        self.database_url = database_url
        self.broker_url = broker_url
        self.env = {
            **os.environ,
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
        self.worker = Process(
            "worker",
            [
                py,
                "-m",
                "celery",
                "-A",
                "worker",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "4",
                "--pool",
                "prefork",
                "-n",
                f"gq-test-{self.sim_port}@%h",
                "--without-mingle",
                "--without-gossip",
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
        self.sim = SimAdmin(self.sim_url)

    def start(self) -> None:
        self.simulator.start()
        wait_until(
            lambda: self.sim.http.get("/_sim/stats").status_code == 200, 20, what="simulator"
        )
        self.worker.start()
        self.beat.start()

    def stop(self) -> None:
        for proc in (self.beat, self.worker, self.simulator):
            proc.kill(signal.SIGTERM)

    def logs(self) -> str:
        return "\n".join(
            f"==== {p.name}\n{p.log()[-6000:]}" for p in (self.worker, self.beat, self.simulator)
        )


@contextmanager
def running_stack(**kwargs: Any) -> Iterator[Stack]:
    stack = Stack(**kwargs)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()
