"""The app the streams benchmark serves: genqueue's, plus one route that streams a status the way
genqueue did before issue 19 (each stream checks the database on its own every interval), so
both are measured in the same run, by the same server, on the same database.

``GET /baseline/{owner}/{app}/requests/{request_id}/status/stream`` (no auth: a benchmark only).
"""

import json
import uuid
from collections.abc import AsyncIterator

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.app import create_app
from api.fal.answers import COMPLETED
from api.fal.status import current_status
from api.state import AppState
from models.settings import Settings
from models.tables import Generation


def _look(state: AppState, generation_id: uuid.UUID, base: str) -> str | None:
    with state.sessions() as session:
        gen = session.get(Generation, generation_id)
        if gen is None:
            return None
        fair = state.settings.max_in_flight > 0
        return json.dumps(current_status(session, gen, base, with_logs=False, fair=fair))


async def _per_stream(state: AppState, generation_id: uuid.UUID, base: str) -> AsyncIterator[str]:
    last: str | None = None
    while True:
        text = await run_in_threadpool(_look, state, generation_id, base)
        if text is None:
            return
        if text != last:
            yield f"data: {text}\n\n"
            last = text
        if json.loads(text)["status"] == COMPLETED:
            return
        await anyio.sleep(state.settings.stream_poll_interval)


def baseline_app() -> FastAPI:
    app = create_app(Settings())
    state: AppState = app.state.genqueue

    @app.get("/baseline/{owner}/{app_name}/requests/{request_id}/status/stream")
    def stream(request: Request, owner: str, app_name: str, request_id: str) -> StreamingResponse:
        base = f"{request.url.scheme}://{request.url.netloc}"
        events = _per_stream(state, uuid.UUID(request_id), base)
        return StreamingResponse(events, media_type="text/event-stream")

    # Before genqueue's catch-all POST route, which would shadow nothing here (GET), but keep
    # the route list in the order FastAPI matches.
    app.router.routes.insert(0, app.router.routes.pop())
    return app
