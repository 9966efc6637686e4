"""Request and response schemas of the native surface, errors and health (the fal surface's are in
``api.fal.schemas``, the model inputs in the catalogue,
``models.catalogue``)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from api.fal.registry import SEED_EXAMPLE
from models.destinations import MAX_URL_LENGTH
from models.status import GenerationStatus


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time in UTC, written ISO 8601 with an explicit ``+00:00`` offset."""

CREATE_EXAMPLE: dict[str, Any] = {
    "model": "fal-ai/flux-pro/kontext/text-to-image",
    "input": SEED_EXAMPLE,
}


# ---- errors -------------------------------------------------------------------------------


class ErrorMessage(BaseModel):
    """Any error: ``detail`` says what is wrong."""

    detail: str
    error_type: str | None = None


class ValidationErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class ValidationErrorResponse(BaseModel):
    """422: one item per invalid field; ``loc`` names it (e.g. ``["body", "num_images"]``)."""

    detail: list[ValidationErrorItem]


# ---- native surface -----------------------------------------------------------------------


PriorityName = Literal["high", "normal", "low"]


class GenerationCreate(BaseModel):
    """``input`` is validated against ``model``'s schema (see the fal routes for each)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": CREATE_EXAMPLE},
    )

    model: str = Field(
        description="endpoint id, e.g. fal-ai/flux-pro/kontext/text-to-image (GET /v1/models "
        "lists them)"
    )
    input: dict[str, Any]
    webhook_url: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        description="http(s) URL POSTed a signed message when the generation ends: no "
        "userinfo, a public address unless the operator allows private ones",
        json_schema_extra={"pattern": "^https?://"},
    )
    priority: PriorityName = Field(
        "normal",
        description="orders the tenant's own pending generations; sent upstream as "
        "X-Fal-Queue-Priority (high goes as normal: fal knows normal and low)",
    )
    await_media: bool = Field(
        False,
        description="the caller fetches the output files as soon as the generation ends (as "
        "`genqueue submit --wait` does): their copy into genqueue's storage goes ahead of any "
        "backlog for GENQUEUE_MEDIA_WAIT seconds after completion, as a sync /run's does",
    )


class GenerationEventPublic(BaseModel):
    at: Timestamp
    kind: str
    status: GenerationStatus | None
    queue_position: int | None
    detail: dict[str, Any] | None


class GenerationPublic(BaseModel):
    id: str = Field(description="genqueue's id; the fal surface's request_id")
    model: str
    status: GenerationStatus
    priority: PriorityName
    input: dict[str, Any]
    upstream_request_id: str | None
    queue_position: int | None
    result: dict[str, Any] | None = Field(
        description="the model output; once its files are stored, each file's `url` is "
        "genqueue's own (and, on GET of one generation, `upstream_url` the upstream's)"
    )
    media_status: str | None = Field(
        None,
        description="the copy of the output files into genqueue's store: pending, stored, "
        "failed (a file could not be copied: its upstream URL stays), deleted; null: no files",
    )
    error: dict[str, Any] | None
    webhook_url: str | None
    idempotency_key: str | None
    cancel_requested_at: Timestamp | None
    created_at: Timestamp
    submitted_at: Timestamp | None
    started_at: Timestamp | None
    completed_at: Timestamp | None
    deadline_at: Timestamp
    submit_attempts: int
    poll_count: int
    estimated_cost: float | None = Field(description="USD, at create (null: model unpriced)")
    final_cost: float | None = Field(
        description="USD, once it ended (null: not ended, or never sent upstream)"
    )
    local_queue_position: int | None = Field(
        None,
        description="while it waits in genqueue's own queue (pending, submitting): how many "
        "jobs go upstream before it, in the order the claim takes them (an estimate under fair "
        "scheduling); null once it was sent upstream",
    )


class GenerationDetail(GenerationPublic):
    events: list[GenerationEventPublic]


class GenerationPage(BaseModel):
    items: list[GenerationPublic]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page")


CancelOutcomeName = Literal["cancelled", "requested", "already_requested"]


class CancelAnswer(BaseModel):
    outcome: CancelOutcomeName
    generation: GenerationDetail


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, bool] = Field(default_factory=dict)
