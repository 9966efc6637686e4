"""Running the API under uvicorn (``genqueue api --host H --port P [--workers N]`` calls
:func:`serve`).

Each process builds its app from the environment's settings through an import-string factory,
so one process and ``N`` processes run the same code. With several processes, Prometheus
metrics go through prometheus_client's multiprocess directory (a fresh one per port, under the
data dir), so ``/metrics`` counts every process's requests whichever process answers it.
"""

import gc
import os
import shutil
import socket
import sys

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from api.app import create_app
from api.metrics import MULTIPROC_ENV
from models.logs import configure_logging
from models.settings import Settings

APP_FACTORY = "api.main:served_app"
WORKER_HEALTHCHECK_SECONDS = 60


class _Config(uvicorn.Config):
    def bind_socket(self) -> socket.socket:
        """uvicorn's listener, marked as TCP. uvicorn 0.54 binds it with ``proto`` 0; accepted
        sockets inherit that, asyncio then skips TCP_NODELAY, and with several processes every
        keep-alive response waited for the client's delayed ACK (uvicorn issue #3149; the
        figures are in benchmarks/HISTORY.md)."""
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, sock.detach())
        return sock


def served_app() -> FastAPI:
    """The app of one serving process: logging configured, settings from the environment.

    Everything built so far (the app, its routes and schemas, the ORM's mappings) lives as long
    as the process: ``gc.freeze()`` takes it out of the cyclic collector's sight. Each full
    collection had to walk it all, and under load those pauses set the POST latency's tail
    (benchmarks/HISTORY.md)."""
    settings = Settings()
    configure_logging(settings)
    app = create_app(settings)
    gc.collect()
    gc.freeze()
    return app


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    *,
    workers: int | None = None,
    factory: str = APP_FACTORY,
) -> None:
    """Serve ``factory``'s app. ``settings`` configure the server (logging, process count,
    metrics directory); every serving process builds its app from the environment, which is
    where ``genqueue`` reads its settings too."""
    settings = settings or Settings()
    configure_logging(settings)
    workers = workers or settings.api_workers
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        path = settings.data_dir / "metrics" / f"api-{port}"
        shutil.rmtree(path, ignore_errors=True)  # files of a previous run would count again
        path.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(path)
    config = _Config(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        # The C parser (httptools), not h11's pure Python one: per webhook of a burst, h11 was
        # a large share of the API's CPU on a loaded machine (benchmarks/RESULTS.md, B4).
        http="httptools",
        # X-Forwarded-* are genqueue's to judge (GENQUEUE_TRUSTED_PROXIES, api/proxies.py):
        # uvicorn's own handling believes 127.0.0.1 by default and rewrites the scheme.
        proxy_headers=False,
        timeout_graceful_shutdown=10,
        # uvicorn spawns each worker process, which imports the whole app before it answers the
        # supervisor's health ping; its 5 s default killed children mid-import on a loaded
        # machine, over and over (seen with the load average at 7 on 2 cores).
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )
    sockets = listeners(config, settings)
    if workers == 1:
        server = uvicorn.Server(config)
        server.run(sockets=sockets)
        if not server.started:
            sys.exit(3)  # uvicorn's startup-failure code: the port is taken, say
        return
    Multiprocess(config, sockets=sockets).run()


def listeners(config: uvicorn.Config, settings: Settings) -> list[socket.socket]:
    """The API's socket, and with ``GENQUEUE_METRICS_PORT`` a second one on
    ``GENQUEUE_METRICS_HOST`` that answers ``/metrics`` alone (the app tells them apart by the
    port a request came in on: :func:`api.metrics.install_metrics`)."""
    sockets = [config.bind_socket()]
    if settings.metrics_port is not None:
        internal = _Config(config.app, host=settings.metrics_host, port=settings.metrics_port)
        sockets.append(internal.bind_socket())
    return sockets
