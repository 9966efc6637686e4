"""The FastAPI application: ``create_app(settings)``, and ``app`` for ``uvicorn api.app:app``.

Building the app connects to nothing: the engine and the broker connection are made on first use.
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from api.access_log import install_access_log_redaction
from api.errors import install_error_handlers
from api.metrics import install_metrics
from api.openapi import install_openapi
from api.publisher import CeleryPublisher, Publisher
from api.routes import (
    client_webhooks,
    console,
    fal,
    health,
    media,
    models,
    overview,
    run,
    usage,
    v1,
    v1_stream,
    webhooks,
)
from api.state import AppState
from models.settings import Settings

DESCRIPTION = """\
A durable job system in front of fal.ai's queue API.

* **fal-compatible queue** — point a fal client (or the relay's curl / fetch / http.client
  snippets) at genqueue by changing only the base URL and the key:
  `POST /{model_id}`, then `…/requests/{request_id}[/status|/status/stream|/cancel]`.
* **generations** — the native `/v1` API with idempotency keys, full history and listing.

Authenticate with `Authorization: Bearer <key>` or `Authorization: Key <key>`.
"""


def create_app(
    settings: Settings | None = None,
    *,
    publisher: Publisher | None = None,
    clock: Callable[[], datetime] | None = None,
) -> FastAPI:
    settings = settings or Settings()
    publisher = publisher or CeleryPublisher(
        broker_url=settings.broker_url, connect_timeout=settings.broker_connect_timeout
    )
    state = AppState(settings, publisher, clock=clock)
    install_access_log_redaction()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    # FastAPI's /docs and /redoc pages load their scripts from a CDN; these serve packaged
    # copies from /static-offline-docs, so the docs work with no outside service.
    app = FastAPIOffline(
        swagger_ui_parameters={"validatorUrl": None},  # no badge fetched from swagger.io
        title="genqueue",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.genqueue = state
    install_error_handlers(app)
    app.include_router(health.router)
    app.include_router(v1.router)
    app.include_router(v1_stream.router)
    app.include_router(overview.router)
    console.install(app)
    app.include_router(client_webhooks.router)
    app.include_router(usage.router)
    app.include_router(models.router)
    app.include_router(media.router)
    # Before fal's routes (/webhooks/fal is not a model id), and before the metrics: its
    # shortcut must sit inside their middleware.
    webhooks.install(app)
    install_metrics(app, state)
    app.include_router(run.model_router(state.catalogue))
    app.include_router(run.router)  # before fal's: /run/… is not a model id
    app.include_router(fal.model_router(state.catalogue))
    app.include_router(fal.router)  # last: it ends with the POST /{model_id} catch-all
    install_openapi(app, state.catalogue)
    return app


_app: FastAPI | None = None


def __getattr__(name: str) -> Any:
    """``api.app.app`` is built on first access, from the environment's settings."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)
