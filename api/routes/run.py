"""fal's synchronous surface, for fal-client's ``run()``: ``POST /run/{model_id}``.

The job is stored and queued like any other (it is an ordinary generation, with its id, history
and URLs); the request then waits for it to end, at most ``GENQUEUE_RUN_TIMEOUT`` seconds, and
answers what ``GET …/requests/{id}`` would: the model output, or the failure in fal's format. A
job that has not ended by then is answered 504 with a message naming its request id and its
status URL: it goes on, and can be followed there. Every answer carries ``X-Fal-Request-Id``,
which also tells fal-client that a 5xx came from the server, not from a proxy, so it is never
retried (a retry would run the job twice).

genqueue has no streaming surface: ``POST /run/{model_id}/stream`` (fal-client's ``stream()``)
is refused with a message that says so, as an SSE ``error`` event, the one thing fal-client's
``stream()`` shows its caller.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.body import JsonBody, json_body
from api.errors import ApiError
from api.fal.answers import FalAnswer, fal_urls, public_base, result_answer
from api.fal.registry import serves, unknown_model_message, validate_input
from api.fal.schemas import FalOutput
from api.openapi import SECURITY, errors, json_request_body
from api.state import AppState, CallerDep, StateDep, authenticate
from api.submission import IDEMPOTENCY_HEADER, IdempotencyKey, submit
from models.catalogue import Catalogue, ModelEntry
from models.media import awaits_copy
from models.media_urls import MediaUrls, result_for
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation

router = APIRouter(prefix="/run", tags=["fal-compatible run"])
REQUEST_ID_HEADER = "X-Fal-Request-Id"
TIMED_OUT = "run_timeout"
NO_STREAMING = (
    "genqueue has no streaming surface: use fal_client.run() or subscribe() with genqueue "
    "(RUN_URL_FORMAT / QUEUE_URL_FORMAT), or GET …/requests/{request_id}/status/stream"
)


def _ended(
    state: AppState, urls: MediaUrls, tenant_id: uuid.UUID, gen_id: uuid.UUID, *, last: bool
) -> FalAnswer | None:
    """The answer once the generation has ended and its files' copy settled (or
    ``media_wait`` has passed since it completed, or this is the ``last`` look): the output
    with genqueue's URLs for the files stored."""
    with state.sessions() as session:
        gen = session.scalar(
            select(Generation).where(Generation.id == gen_id, Generation.tenant_id == tenant_id)
        )
        if gen is None or GenerationStatus(gen.status) not in TERMINAL:
            return None
        wait = state.settings.media_wait
        if not last and awaits_copy(gen.media_status, gen.completed_at, state.clock(), wait):
            return None
        return result_answer(gen, result_for(session, gen, urls, keep_upstream=False))


async def _wait(
    state: AppState, request: Request, tenant_id: uuid.UUID, gen_id: uuid.UUID
) -> FalAnswer | None:
    """The answer once the generation has ended; None when the wait is over first (or the
    client went away)."""
    deadline = time.monotonic() + state.settings.run_timeout
    urls = state.media_urls(request)
    while True:
        left = deadline - time.monotonic()
        answer = await run_in_threadpool(_ended, state, urls, tenant_id, gen_id, last=left <= 0)
        if answer is not None or left <= 0 or await request.is_disconnected():
            return answer
        await asyncio.sleep(min(state.settings.stream_poll_interval, left))


def _run_route(spec: ModelEntry) -> Callable[..., Awaitable[JSONResponse]]:
    async def run_request(
        request: Request,
        caller: CallerDep,
        body: JsonBody,
        state: StateDep,
        idempotency_key: IdempotencyKey = None,
    ) -> JSONResponse:
        return await _run(request, caller, body, state, spec.endpoint_id, idempotency_key)

    run_request.__name__ = "run_" + spec.endpoint_id.replace("/", "_").replace("-", "_")
    return run_request


async def _run(
    request: Request,
    caller: Caller,
    body: object,
    state: AppState,
    endpoint_id: str,
    idempotency_key: str | None,
) -> JSONResponse:
    """Submit to ``endpoint_id`` (listed, or unlisted and allowed) and answer its result."""
    input = validate_input(
        state.catalogue,
        endpoint_id,
        body,
        loc=["body"],
        max_unlisted_bytes=state.settings.max_body_bytes,
    )
    done = await submit(
        state,
        caller,
        model=endpoint_id,
        input=input,
        webhook_url=None,
        idempotency_key=idempotency_key,
        copy_awaited=True,
    )
    gen_id = done.inserted.id
    rid = str(gen_id)
    answer = await _wait(state, request, caller.tenant_id, gen_id)
    if answer is None:
        urls = fal_urls(
            public_base(request, state.settings.public_url, state.proxies), endpoint_id, rid
        )
        detail = (
            f"request {rid} did not finish within {state.settings.run_timeout:g} s; it goes "
            f"on: follow it at {urls['status_url']} (its result: {urls['response_url']})"
        )
        answer = FalAnswer(
            504,
            {"detail": detail, "error_type": TIMED_OUT, "request_id": rid, **urls},
            {"X-Fal-Error-Type": TIMED_OUT},
        )
    headers = {**answer.headers, REQUEST_ID_HEADER: rid}
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


async def _no_stream(request: Request, state: StateDep) -> Response:
    await authenticate(request, state)
    event = {"detail": NO_STREAMING, "error_type": "streaming_not_supported"}
    body = f"event: error\ndata: {json.dumps(event)}\n\n"
    return Response(body, status_code=400, media_type="text/event-stream")


def model_router(catalogue: Catalogue) -> APIRouter:
    """``POST /run/{endpoint_id}`` for every model of the catalogue (included before
    :data:`router`, whose catch-all answers the others)."""
    models = APIRouter(prefix="/run", tags=["fal-compatible run"])
    for spec in catalogue.values():
        models.add_api_route(
            f"/{spec.endpoint_id}",
            _run_route(spec),
            methods=["POST"],
            summary=f"Run and wait: {spec.summary}",
            response_model=FalOutput,
            responses=errors(
                401,
                402,
                409,
                413,
                422,
                429,
                503,
                504,
                described={504: "Not finished within GENQUEUE_RUN_TIMEOUT: it goes on"},
            ),
            openapi_extra={
                **json_request_body(catalogue.schema_name(spec.endpoint_id), dict(spec.example)),
                "security": SECURITY,
            },
        )
        models.add_api_route(
            f"/{spec.endpoint_id}/stream", _no_stream, methods=["POST"], include_in_schema=False
        )
    return models


@router.post("/{model_id:path}", include_in_schema=False)
async def unknown_run(request: Request, state: StateDep, model_id: str) -> Response:
    caller = await authenticate(request, state)
    endpoint_id = model_id.strip("/")
    if endpoint_id in state.catalogue or not serves(
        state.catalogue, endpoint_id, allow_unlisted=state.settings.allow_unlisted_models
    ):
        raise ApiError(404, unknown_model_message(endpoint_id, state.catalogue))
    body = await json_body(request, state)
    return await _run(
        request, caller, body, state, endpoint_id, request.headers.get(IDEMPOTENCY_HEADER)
    )
