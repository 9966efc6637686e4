"""The native surface: ``/v1/generations`` — create, get (with events), list, cancel."""

import uuid
from datetime import datetime
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.body import JsonBody, storable_text, unstorable_text
from api.errors import ApiError, ValidationFailed, error_items, invalid, not_found
from api.fal.registry import serves, validate_input
from api.listing import (
    CURSOR_PATTERN,
    ID_PREFIX_PATTERN,
    MAX_SEARCH_LENGTH,
    Filters,
    as_utc,
    list_page,
    prefix_ids,
)
from api.lookups import events_of, local_queue_position, owned_generation
from api.openapi import SECURITY, errors, json_request_body
from api.publisher import publish_after_commit
from api.schemas import (
    CREATE_EXAMPLE,
    CancelAnswer,
    CancelOutcomeName,
    GenerationCreate,
    GenerationDetail,
    GenerationPage,
)
from api.state import AppState, CallerDep, SessionDep, StateDep
from api.submission import (
    IDEMPOTENCY_HEADER,
    IdempotencyKey,
    check_webhook_url,
    key_holder,
    submit,
)
from api.views import new_detail, to_detail, to_public
from models import tasknames
from models.generations import CancelRequestOutcome, request_cancel
from models.media_deletion import tombstone
from models.media_urls import result_for, results_for
from models.priority import Priority
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation

router = APIRouter(prefix="/v1", tags=["generations"])
AUTH = {"security": SECURITY}
REPLAYED = "Idempotent-Replayed"


def _detail(session: Session, gen: Generation, *, fair: bool) -> GenerationDetail:
    position = local_queue_position(session, gen, fair=fair)
    return to_detail(gen, events_of(session, gen.id), local_queue_position=position)


def _parse_create(body: Any, state: AppState) -> tuple[GenerationCreate, dict[str, Any]]:
    catalogue = state.catalogue
    try:
        create = GenerationCreate.model_validate(body, strict=True)
    except ValidationError as exc:
        raise ValidationFailed(error_items(exc, loc=["body"])) from None
    if not serves(catalogue, create.model, allow_unlisted=state.settings.allow_unlisted_models):
        raise invalid(
            ["body", "model"],
            f"Unknown model; supported models: {', '.join(catalogue)}",
            type="enum",
            input=create.model,
            ctx={"expected": list(catalogue)},
        )
    check_webhook_url(create.webhook_url, ["body", "webhook_url"], state.webhook_policy)
    input = validate_input(
        catalogue,
        create.model,
        create.input,
        loc=["body", "input"],
        max_unlisted_bytes=state.settings.max_body_bytes,
    )
    return create, input


@router.post(
    "/generations",
    status_code=201,
    response_model=GenerationDetail,
    summary="Create a generation",
    description=f"With an `{IDEMPOTENCY_HEADER}` header, the same key and body answer the "
    f"same generation (with `{REPLAYED}: true`); the same key with another body is a 409.",
    responses=errors(401, 402, 409, 413, 422, 429, 503),
    openapi_extra={**json_request_body("GenerationCreate", CREATE_EXAMPLE), **AUTH},
)
async def create_generation_route(
    response: Response,
    caller: CallerDep,
    body: JsonBody,
    state: StateDep,
    idempotency_key: IdempotencyKey = None,
) -> GenerationDetail:
    create, input = _parse_create(body, state)
    done = await submit(
        state,
        caller,
        model=create.model,
        input=input,
        webhook_url=create.webhook_url,
        idempotency_key=idempotency_key,
        priority=Priority(create.priority),
        position=True,
        copy_awaited=create.await_media,
    )
    if done.inserted.row is not None:
        return new_detail(done.inserted.row, done.now, local_queue_position=done.queue_position)
    response.headers[REPLAYED] = "true"
    return await run_in_threadpool(_replayed, state, done.inserted.id)


def _replayed(state: AppState, generation_id: uuid.UUID) -> GenerationDetail:
    with state.sessions() as session:
        gen = key_holder(session, generation_id)
        return _detail(session, gen, fair=state.settings.max_in_flight > 0)


@router.get(
    "/generations/{generation_id}",
    response_model=GenerationDetail,
    summary="Get a generation with its full history",
    responses=errors(401, 404, 503),
    openapi_extra=AUTH,
)
def get_generation(
    request: Request, state: StateDep, caller: CallerDep, session: SessionDep, generation_id: str
) -> GenerationDetail:
    gen = owned_generation(session, caller.tenant_id, generation_id)
    if gen is None:
        raise not_found()
    detail = _detail(session, gen, fair=state.settings.max_in_flight > 0)
    if gen.media_status is not None:
        result = result_for(session, gen, state.media_urls(request), keep_upstream=True)
        detail = detail.model_copy(update={"result": result})
    session.close()  # give the connection back before the response hops threads (create route)
    return detail


def _bounded(value: datetime | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return as_utc(value)
    except OverflowError:
        raise invalid(
            ["query", name],
            "Datetime is out of range",
            type="datetime_range",
            input=value.isoformat(),
        ) from None


@router.get(
    "/generations",
    response_model=GenerationPage,
    summary="List generations, newest first",
    responses=errors(401, 422, 503),
    openapi_extra=AUTH,
)
def list_generations(
    request: Request,
    caller: CallerDep,
    session: SessionDep,
    state: StateDep,
    status: Annotated[list[GenerationStatus] | None, Query()] = None,
    model: str | None = None,
    prompt: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_SEARCH_LENGTH,
            description="Only prompts that contain this text (case-insensitive)",
        ),
    ] = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[
        str | None,
        Query(
            pattern=CURSOR_PATTERN,
            description="The `next_cursor` of the previous page (creation time in "
            "microseconds since the epoch, `_`, the last id in hex)",
        ),
    ] = None,
    id_prefix: Annotated[
        str | None,
        Query(
            description="Only ids that begin with these hex digits (`genqueue status 5d7e`)",
            json_schema_extra={"pattern": ID_PREFIX_PATTERN},
        ),
    ] = None,
) -> GenerationPage:
    for name, text in (("model", model), ("prompt", prompt)):
        if text is not None and not storable_text(text):
            raise unstorable_text(["query", name])
    filters = Filters(
        statuses=status or (),
        model=model,
        created_after=_bounded(created_after, "created_after"),
        created_before=_bounded(created_before, "created_before"),
        ids=None if id_prefix is None else prefix_ids(id_prefix),
        prompt=prompt,
    )
    rows, next_cursor = list_page(session, caller.tenant_id, filters, limit=limit, cursor=cursor)
    results = results_for(session, rows, state.media_urls(request), keep_upstream=True)
    fair = state.settings.max_in_flight > 0
    items = [
        to_public(g).model_copy(
            update={
                "result": results[g.id],
                "local_queue_position": local_queue_position(session, g, fair=fair),
            }
        )
        for g in rows
    ]
    page = GenerationPage(items=items, next_cursor=next_cursor)
    session.close()
    return page


@router.post(
    "/generations/{generation_id}/cancel",
    response_model=CancelAnswer,
    status_code=202,
    summary="Cancel a generation",
    description="200 `cancelled` when it had not been sent upstream; 202 `requested` when a "
    "worker must ask upstream (it may still complete); 409 once it has ended.",
    responses={
        200: {"model": CancelAnswer, "description": "Cancelled at once"},
        **errors(401, 404, 409, 503),
    },
    openapi_extra=AUTH,
)
def cancel_generation(
    response: Response,
    caller: CallerDep,
    session: SessionDep,
    state: StateDep,
    generation_id: str,
) -> CancelAnswer:
    gen = owned_generation(session, caller.tenant_id, generation_id)
    if gen is None:
        raise not_found()
    answer = request_cancel(session, gen.id, now=state.clock())
    session.commit()
    if answer.outcome is CancelRequestOutcome.ALREADY_TERMINAL:
        status = answer.status.value if answer.status else gen.status
        raise ApiError(409, f"Generation has already ended ({status})", status=status)
    if answer.outcome is CancelRequestOutcome.REQUESTED:
        publish_after_commit(state.publisher, tasknames.CANCEL, [str(gen.id)])
    if answer.outcome is CancelRequestOutcome.CANCELLED:
        response.status_code = 200
    session.refresh(gen)
    outcome = cast(CancelOutcomeName, answer.outcome.value)
    fair = state.settings.max_in_flight > 0
    cancel_answer = CancelAnswer(outcome=outcome, generation=_detail(session, gen, fair=fair))
    session.close()
    return cancel_answer


@router.delete(
    "/generations/{generation_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a finished generation's outputs",
    description="Removes its stored files (their URLs answer 404 at once; the objects go with "
    "the next media tick), its result and its input. A tombstone stays: ids, times, status, "
    "model. 409 while the generation has not ended (cancel it first).",
    responses={204: {"description": "Deleted"}, **errors(401, 404, 409, 503)},
    openapi_extra=AUTH,
)
def delete_generation(
    caller: CallerDep, session: SessionDep, state: StateDep, generation_id: str
) -> Response:
    gen = owned_generation(session, caller.tenant_id, generation_id)
    if gen is None:
        raise not_found()
    if GenerationStatus(gen.status) not in TERMINAL:
        raise ApiError(
            409,
            f"Generation has not ended ({gen.status}): cancel it first",
            status=gen.status,
        )
    tombstone(session, [gen.id], state.clock(), reason="request")
    session.commit()
    return Response(status_code=204)
