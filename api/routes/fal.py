"""The fal-compatible queue surface: what fal clients (and the seed's snippets) call.

``POST /{model_id}`` answers with the queue handle; status, result and cancel live under
``/{owner}/{app}/requests/{request_id}`` as on ``queue.fal.run``. Trailing slashes are accepted.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.orm import Session

from api.auth import Caller
from api.body import JsonBody, json_body
from api.errors import ApiError
from api.fal.answers import (
    COMPLETED,
    FalAnswer,
    cancel_already_completed,
    cancel_not_found,
    cancel_requested,
    fal_urls,
    public_base,
    result_answer,
    submit_body,
)
from api.fal.registry import serves, unknown_model_message, validate_input
from api.fal.schemas import FalCancelResponse, FalOutput, FalStatusResponse, FalSubmitResponse
from api.fal.status import WatchedStream, current_status, status_events
from api.fal.watcher import Watch
from api.lookups import owned_generation
from api.openapi import SECURITY, errors, json_request_body
from api.publisher import publish_after_commit
from api.state import AppState, CallerDep, SessionDep, StateDep, authenticate
from api.submission import (
    IDEMPOTENCY_HEADER,
    PRIORITY_HEADER,
    WEBHOOK_URL_PATTERN,
    IdempotencyKey,
    check_priority_header,
    check_webhook_url,
    submit,
)
from models import tasknames
from models.catalogue import Catalogue, ModelEntry
from models.destinations import MAX_URL_LENGTH
from models.endpoint_id import app_id
from models.generations import CancelRequestOutcome, request_cancel
from models.media_urls import result_for
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation

router = APIRouter(tags=["fal-compatible queue"])
REQUEST = "/{owner}/{app}/requests/{request_id}"
LogsFlag = Literal["1", "0", "true", "false"]


def _submit_route(spec: ModelEntry) -> Callable[..., Awaitable[JSONResponse]]:
    async def submit_request(
        request: Request,
        caller: CallerDep,
        body: JsonBody,
        state: StateDep,
        idempotency_key: IdempotencyKey = None,
        fal_webhook: Annotated[
            str | None,
            Query(
                max_length=MAX_URL_LENGTH,
                description="http(s) URL POSTed a signed message when the request ends (fal's "
                "webhook query): no userinfo, a public address unless the operator allows "
                "private ones",
                json_schema_extra={"pattern": WEBHOOK_URL_PATTERN},
            ),
        ] = None,
        queue_priority: Annotated[
            str | None,
            Header(
                alias=PRIORITY_HEADER,
                description="normal (default) or low; genqueue also takes high",
                json_schema_extra={"enum": ["high", "normal", "low"]},
            ),
        ] = None,
    ) -> JSONResponse:
        return await _submitted(
            request, caller, body, state, spec.endpoint_id, idempotency_key, fal_webhook,
            queue_priority,
        )  # fmt: skip

    submit_request.__name__ = "submit_" + spec.endpoint_id.replace("/", "_").replace("-", "_")
    return submit_request


async def _submitted(
    request: Request,
    caller: Caller,
    body: object,
    state: AppState,
    endpoint_id: str,
    idempotency_key: str | None,
    fal_webhook: str | None,
    queue_priority: str | None,
) -> JSONResponse:
    """A submit to ``endpoint_id`` (a catalogue model's route, or an unlisted one's)."""
    input = validate_input(
        state.catalogue,
        endpoint_id,
        body,
        loc=["body"],
        max_unlisted_bytes=state.settings.max_body_bytes,
    )
    webhook = check_webhook_url(fal_webhook, ["query", "fal_webhook"], state.webhook_policy)
    priority = check_priority_header(queue_priority)
    done = await submit(
        state,
        caller,
        model=endpoint_id,
        input=input,
        webhook_url=webhook,
        idempotency_key=idempotency_key,
        position=True,
        priority=priority,
    )
    rid = str(done.inserted.id)
    urls = fal_urls(
        public_base(request, state.settings.public_url, state.proxies), endpoint_id, rid
    )
    position = done.queue_position or 0
    return JSONResponse(submit_body(rid, urls, queue_position=position, webhook=bool(webhook)))


def model_router(catalogue: Catalogue) -> APIRouter:
    """``POST /{endpoint_id}`` for every model of the catalogue (included before
    :data:`router`, whose catch-all answers the others)."""
    models = APIRouter(tags=["fal-compatible queue"])
    for spec in catalogue.values():
        models.add_api_route(
            f"/{spec.endpoint_id}",
            _submit_route(spec),
            methods=["POST"],
            summary=f"Submit: {spec.summary}",
            response_model=FalSubmitResponse,
            responses=errors(401, 402, 409, 413, 422, 429, 503),
            openapi_extra={
                **json_request_body(catalogue.schema_name(spec.endpoint_id), dict(spec.example)),
                "security": SECURITY,
            },
        )
    return models


def _owned(
    session: Session, caller: Caller, owner: str, app: str, request_id: str
) -> Generation | None:
    """The caller's generation, reached through its own app's URLs only."""
    gen = owned_generation(session, caller.tenant_id, request_id)
    if gen is None or app_id(gen.model) != f"{owner}/{app}":
        return None
    return gen


@router.get(
    REQUEST + "/status",
    summary="Request status",
    response_model=FalStatusResponse,
    responses={
        202: {"model": FalStatusResponse, "description": "IN_QUEUE or IN_PROGRESS"},
        **errors(401, 404, 422, 503),
    },
    openapi_extra={"security": SECURITY},
)
@router.get(REQUEST + "/status/", include_in_schema=False)
def request_status(
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    state: StateDep,
    owner: str,
    app: str,
    request_id: str,
    logs: LogsFlag | None = None,
) -> JSONResponse:
    gen = _owned(session, caller, owner, app, request_id)
    if gen is None:
        raise ApiError(404, "Request not found")
    base = public_base(request, state.settings.public_url, state.proxies)
    fair = state.settings.max_in_flight > 0
    body = current_status(session, gen, base, with_logs=logs in ("1", "true"), fair=fair)
    return JSONResponse(body, status_code=200 if body["status"] == COMPLETED else 202)


@router.get(
    REQUEST + "/status/stream",
    summary="Request status as server-sent events, until COMPLETED",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`data: <status JSON>` events, `: ping` keepalives",
        },
        **errors(401, 404, 422, 429, 503),
    },
    openapi_extra={"security": SECURITY},
)
def request_status_stream(
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    state: StateDep,
    owner: str,
    app: str,
    request_id: str,
    logs: LogsFlag | None = None,
) -> StreamingResponse:
    gen = _owned(session, caller, owner, app, request_id)
    if gen is None:
        raise ApiError(404, "Request not found")
    base = public_base(request, state.settings.public_url, state.proxies)
    with_logs = logs in ("1", "true")
    first = current_status(
        session, gen, base, with_logs=with_logs, fair=state.settings.max_in_flight > 0
    )
    session.close()  # the stream holds no connection: the watcher checks for every stream
    watch = state.streams.open(Watch(caller.key_id, gen.id, base, with_logs, first))
    settings = state.settings
    events = status_events(
        state.streams,
        watch,
        ping_interval=settings.stream_ping_interval,
        max_seconds=settings.stream_max_seconds,
    )
    return WatchedStream(
        events,
        on_end=lambda: state.streams.close(watch),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    REQUEST,
    summary="Request result: the model output once COMPLETED",
    response_model=FalOutput,
    responses={
        **errors(
            400,
            401,
            404,
            410,
            503,
            described={400: "Not completed yet", 410: "Completed, and its result since deleted"},
        ),
        499: {
            "description": "Cancelled (upstream's answer to the honoured cancel, or genqueue's "
            "`{detail, error_type}`)",
            "content": {"application/json": {"schema": {}}},
        },
        "default": {
            "description": "A failed request: the failure's own status code and body "
            "(upstream's, or genqueue's `{detail, error_type}`)",
            "content": {"application/json": {"schema": {}}},
        },
    },
    openapi_extra={"security": SECURITY},
)
@router.get(REQUEST + "/", include_in_schema=False)
def request_result(
    request: Request,
    state: StateDep,
    caller: CallerDep,
    session: SessionDep,
    owner: str,
    app: str,
    request_id: str,
) -> JSONResponse:
    gen = _owned(session, caller, owner, app, request_id)
    if gen is None:
        raise ApiError(404, "Request not found")
    result = result_for(session, gen, state.media_urls(request), keep_upstream=False)
    return _respond(result_answer(gen, result))


@router.put(
    REQUEST + "/cancel",
    summary="Cancel a request",
    status_code=202,
    response_model=FalCancelResponse,
    responses={
        400: {"model": FalCancelResponse, "description": "ALREADY_COMPLETED"},
        404: {"model": FalCancelResponse, "description": "NOT_FOUND"},
        **errors(401, 503),
    },
    openapi_extra={"security": SECURITY},
)
@router.put(REQUEST + "/cancel/", include_in_schema=False)
def request_cancel_route(
    caller: CallerDep,
    session: SessionDep,
    state: StateDep,
    owner: str,
    app: str,
    request_id: str,
) -> JSONResponse:
    gen = _owned(session, caller, owner, app, request_id)
    if gen is None:
        return _respond(cancel_not_found())
    if GenerationStatus(gen.status) in TERMINAL:
        return _respond(cancel_already_completed())
    answer = request_cancel(session, gen.id, now=state.clock())
    session.commit()
    if answer.outcome is CancelRequestOutcome.ALREADY_TERMINAL:
        return _respond(cancel_already_completed())
    if answer.outcome is CancelRequestOutcome.REQUESTED:
        publish_after_commit(state.publisher, tasknames.CANCEL, [str(gen.id)])
    return _respond(cancel_requested())


def _respond(answer: FalAnswer) -> JSONResponse:
    return JSONResponse(answer.body, status_code=answer.status_code, headers=answer.headers)


@router.api_route(
    "/{model_id:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
async def unknown_model(request: Request, state: StateDep, model_id: str) -> Response:
    """A POST to anything else is a submit to a model genqueue does not serve (or one of its
    models spelt with a trailing slash: that is redirected, method and body kept), or, with
    ``GENQUEUE_ALLOW_UNLISTED_MODELS``, to an unlisted model: taken as it is."""
    if request.method != "POST":
        raise ApiError(404, "Not Found")
    caller = await authenticate(request, state)
    endpoint_id = model_id.strip("/")
    if endpoint_id in state.catalogue:
        url = request.url.replace(path="/" + endpoint_id)
        return RedirectResponse(str(url), status_code=307)
    if not serves(
        state.catalogue, endpoint_id, allow_unlisted=state.settings.allow_unlisted_models
    ):
        raise ApiError(404, unknown_model_message(model_id, state.catalogue))
    return await _submitted(
        request,
        caller,
        await json_body(request, state),
        state,
        endpoint_id,
        request.headers.get(IDEMPOTENCY_HEADER),
        request.query_params.get("fal_webhook"),
        request.headers.get(PRIORITY_HEADER),
    )
