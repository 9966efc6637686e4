"""``python -m benchmarks.bare_app --port P``: the B3 baseline, a bare FastAPI endpoint.

``POST /v1/generations`` reads the JSON body and answers 201 with a small JSON object: no auth,
no validation, no database, no broker. It is served by ``api.main.serve`` itself (only the app
factory differs), so uvicorn's settings, the process count and the logging are the API's.
"""

import argparse
import uuid
from typing import Any

from fastapi import FastAPI, Request

from api.main import serve
from models.logs import configure_logging
from models.settings import Settings

FACTORY = "benchmarks.bare_app:served_bare_app"


def create_bare_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="bare")

    @app.post("/v1/generations", status_code=201)
    async def create(request: Request) -> dict[str, Any]:
        body = await request.json()
        return {"id": str(uuid.uuid4()), "status": "pending", "model": body.get("model")}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def served_bare_app() -> FastAPI:
    """What each serving process builds, as ``api.main.served_app`` does for the API."""
    configure_logging(Settings())
    return create_bare_app()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare_app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    serve(args.host, args.port, Settings(), workers=args.workers, factory=FACTORY)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
