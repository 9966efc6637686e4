"""Running the API under uvicorn (``genqueue api --host H --port P`` calls :func:`serve`)."""

import uvicorn

from api.app import create_app
from models.logs import configure_logging
from models.settings import Settings


def serve(host: str = "127.0.0.1", port: int = 8000, settings: Settings | None = None) -> None:
    settings = settings or Settings()
    configure_logging(settings)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=10,
    )
