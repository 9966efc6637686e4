"""Request and response schemas of both surfaces (the model inputs live in ``api.inputs``)."""

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from api.inputs import SEED_EXAMPLE
from api.registry import SUPPORTED
from models.status import GenerationStatus


def _iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A time in UTC, written ISO 8601 with an explicit ``+00:00`` offset."""

_SEED_ID = "acf05732-7cb3-445b-9f39-fdaeccb1d730"
_SEED_URL = f"https://queue.fal.run/fal-ai/flux-pro/requests/{_SEED_ID}"
SEED_SUBMIT_ANSWER: dict[str, Any] = {
    "status": "IN_QUEUE",
    "request_id": _SEED_ID,
    "response_url": _SEED_URL,
    "status_url": f"{_SEED_URL}/status",
    "cancel_url": f"{_SEED_URL}/cancel",
    "logs": None,
    "metrics": {},
    "queue_position": 0,
}
"""The response example of the seed document, verbatim (genqueue answers with its own host)."""


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


# ---- fal-compatible surface ---------------------------------------------------------------


class FalLog(BaseModel):
    message: str
    level: str
    source: str
    timestamp: str


class FalSubmitResponse(BaseModel):
    """The queue handle, exactly as fal (and the seed's relay) answers a submit."""

    status: Literal["IN_QUEUE"]
    request_id: str
    response_url: str
    status_url: str
    cancel_url: str
    logs: None
    metrics: dict[str, Any]
    queue_position: int
    gateway_request_id: str | None = None


class FalStatusResponse(BaseModel):
    """202 while IN_QUEUE or IN_PROGRESS, 200 once COMPLETED (a failure is COMPLETED too, with
    ``error`` and ``error_type``). ``queue_position`` only while IN_QUEUE."""

    status: Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    request_id: str
    response_url: str
    status_url: str
    cancel_url: str
    logs: list[FalLog] | None
    metrics: dict[str, Any]
    queue_position: int | None = None
    error: str | None = None
    error_type: str | None = None


class FalCancelResponse(BaseModel):
    status: Literal["CANCELLATION_REQUESTED", "ALREADY_COMPLETED", "NOT_FOUND"]
    detail: str | None = None


class FalOutput(BaseModel):
    """The model's output, verbatim from upstream (``images``, ``seed``, ``timings`` …)."""

    model_config = ConfigDict(extra="allow")


# ---- native surface -----------------------------------------------------------------------


class GenerationCreate(BaseModel):
    """``input`` is validated against ``model``'s schema (see the fal routes for each)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"example": CREATE_EXAMPLE},
    )

    model: str = Field(
        description="endpoint id, e.g. fal-ai/flux-pro/kontext/text-to-image",
        json_schema_extra={"enum": list(SUPPORTED)},
    )
    input: dict[str, Any]
    webhook_url: str | None = Field(None, description="stored with the generation")


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
    input: dict[str, Any]
    upstream_request_id: str | None
    queue_position: int | None
    result: dict[str, Any] | None
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
