"""A RabbitMQ node of a run's own (``rabbitmq-server`` into a temp dir, its own name, ports and
epmd), on the loopback or inside another host (``wrap``, ``sandbox.netns``)."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psutil

from genqueue.net import free_port, wait_until
from genqueue.supervisor import die_with_parent

SERVER_LIB = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 90.0
"""A node boots in 5-20 s on this machine's two shared cores."""


def answers(host: str, port: int) -> bool:
    """Whether an AMQP listener accepts a connection (the protocol header gets a reply)."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"AMQP\x00\x00\x09\x01")
            return bool(sock.recv(8))
    except OSError:
        return False


def server_binary() -> str:
    found = shutil.which("rabbitmq-server", path=f"{SERVER_LIB}:{os.environ.get('PATH', '')}")
    if not found:
        raise RuntimeError("rabbitmq-server is not installed (apt-get install rabbitmq-server)")
    # The /usr/sbin wrapper switches to the rabbitmq user and cd's to its home; the script it
    # runs takes our environment as it is.
    lib = SERVER_LIB / "rabbitmq-server"
    return str(lib) if lib.exists() else found


class RabbitMQServer:
    """A RabbitMQ node of our own: its own name, ports, epmd and data in a temp dir. It can be
    killed (SIGKILL, no shutdown), started again with its data, or wiped."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        wrap: list[str] | None = None,
        *,
        prefix: str = "gq-rabbitmq-",
    ) -> None:
        """``wrap`` runs the node inside another host (a network namespace), listening on
        ``host``; ``prefix`` names its temp dir (it shows in the node's command line)."""
        self.host, self.wrap = host, wrap or []
        self.binary = server_binary()
        self.dir = Path(tempfile.mkdtemp(prefix=prefix))
        self.port, self.dist_port, self.epmd_port = free_port(), free_port(), free_port()
        self.node = f"gq-{uuid.uuid4().hex[:8]}@localhost"
        self.run_as: list[str] = []
        if os.geteuid() == 0:  # the node's files and cookie belong to the rabbitmq user
            shutil.chown(self.dir, "rabbitmq")
            self.run_as = ["runuser", "-u", "rabbitmq", "--"]
        if host != "127.0.0.1":  # guest may log in from the loopback only, unless told
            (self.dir / "rabbitmq.conf").write_text("loopback_users = none\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}//"

    def _env(self) -> dict[str, str]:
        d = self.dir
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": str(d),  # the Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_PID_FILE": str(d / "pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),
        }

    def start(self) -> None:
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the node and return at once (``wait_ready`` waits for it to answer). The
        calling thread is its parent: the node is killed when that thread ends."""
        with (self.dir / "server.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    *self.wrap,
                    *self.run_as,
                    "env",
                    *[f"{k}={v}" for k, v in self._env().items()],
                    self.binary,
                ],
                cwd=self.dir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def wait_ready(self) -> None:
        try:
            wait_until(lambda: self._up(), START_TIMEOUT, interval=0.25, what="rabbitmq-server")
        except TimeoutError:
            tail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"rabbitmq-server did not start:\n{tail}") from None

    def _up(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.dir / "server.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"rabbitmq-server exited ({self.proc.returncode}):\n{tail}")
        return answers(self.host, self.port)

    def kill(self) -> None:
        """SIGKILL to the node: no clean shutdown, what a power cut or the OOM killer does."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # erl_child_setup and the like
        self.proc = None

    def wipe(self) -> None:
        """Forget every queue and message (the node must be down): a broker that lost its disk."""
        shutil.rmtree(self.dir / "mnesia", ignore_errors=True)

    def close(self) -> None:
        self.kill()
        # The node started an epmd of its own on its own port (a daemon): end it too.
        for proc in psutil.process_iter(["name"]):
            if proc.info["name"] != "epmd":
                continue
            with contextlib.suppress(psutil.Error):
                if proc.environ().get("ERL_EPMD_PORT") == str(self.epmd_port):
                    proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
