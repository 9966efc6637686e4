"""Run the simulator over real HTTP: in a background thread, or blocking from the CLI."""

import logging
import socket
import threading
import time
from types import TracebackType

import uvicorn

from simulator.app import create_app
from simulator.config import SimulatorConfig
from simulator.core import Simulator
from simulator.transport import protocol_class

logger = logging.getLogger(__name__)


def uvicorn_config(sim: Simulator, *, host: str, port: int, log_level: str) -> uvicorn.Config:
    """uvicorn settings shared by the thread server and the CLI."""
    return uvicorn.Config(
        create_app(sim),
        host=host,
        port=port,
        http=protocol_class(),
        lifespan="off",
        access_log=False,
        log_level=log_level,
        log_config=None,
        timeout_graceful_shutdown=1,
        timeout_keep_alive=30,
        backlog=4096,
    )


class SimulatorServer:
    """A simulator served by uvicorn in a daemon thread; ``port=0`` picks a free port.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        config: SimulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        sim: Simulator | None = None,
        log_level: str = "warning",
    ) -> None:
        self.sim = sim if sim is not None else Simulator(config)
        self.host = host
        self._requested_port = port
        self._log_level = log_level
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> "SimulatorServer":
        if self._thread is not None:
            raise RuntimeError("server already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self._requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn_config(self.sim, host=self.host, port=self.port, log_level=self._log_level)
        server = uvicorn.Server(config)
        self._server = server
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="simulator-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                sock.close()
                raise RuntimeError("simulator server failed to start")
            time.sleep(0.005)
        logger.info("simulator listening on %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self.sim.close()
        self._server = self._thread = None

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
