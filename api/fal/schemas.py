"""The fal surface's answers as schemas, for the OpenAPI document (the routes answer with the
bodies ``api.fal.answers`` builds)."""

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

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
