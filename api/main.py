"""Running the API under uvicorn (``genqueue api --host H --port P [--workers N]`` calls
:func:`serve`).

Each process builds its app from the environment's settings through an import-string factory,
so one process and ``N`` processes run the same code. With several processes, Prometheus
metrics go through prometheus_client's multiprocess directory (a fresh one per port, under the
data dir), so ``/metrics`` counts every process's requests whichever process answers it.
"""

import os
import shutil

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.metrics import MULTIPROC_ENV
from models.logs import configure_logging
from models.settings import Settings

APP_FACTORY = "api.main:served_app"


def served_app() -> FastAPI:
    """The app of one serving process: logging configured, settings from the environment."""
    settings = Settings()
    configure_logging(settings)
    return create_app(settings)


def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    settings: Settings | None = None,
    *,
    workers: int | None = None,
    factory: str = APP_FACTORY,
) -> None:
    settings = settings or Settings()
    configure_logging(settings)
    workers = workers or settings.api_workers
    if workers > 1 and not os.environ.get(MULTIPROC_ENV):
        path = settings.data_dir / "metrics" / f"api-{port}"
        shutil.rmtree(path, ignore_errors=True)  # files of a previous run would count again
        path.mkdir(parents=True)
        os.environ[MULTIPROC_ENV] = str(path)
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
