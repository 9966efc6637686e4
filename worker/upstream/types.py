"""Typed answers of the upstream queue API (UPSTREAM.md §4–§7); immutable, safe across threads."""

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

Op = Literal["submit", "status", "result", "cancel"]
"""The queue operation a call or an error belongs to."""


class QueueState(StrEnum):
    """The ``status`` field of a status answer. fal has no FAILED/CANCELED: see ``StatusReport``."""

    IN_QUEUE = "IN_QUEUE"
    """Waiting for a runner; ``queue_position`` counts the requests in front (0 = next)."""
    IN_PROGRESS = "IN_PROGRESS"
    """A runner is working on it."""
    COMPLETED = "COMPLETED"
    """Final, whether it succeeded, failed or was cancelled: fetch the result to know which."""


class UpstreamCancelOutcome(StrEnum):
    """Upstream's answer to a cancel (the documented enum of the cancel endpoint)."""

    CANCELLATION_REQUESTED = "CANCELLATION_REQUESTED"
    """Accepted (202). A running request may still finish; keep polling until COMPLETED."""
    ALREADY_COMPLETED = "ALREADY_COMPLETED"
    """Too late (400): the request had already completed; its result stands."""
    NOT_FOUND = "NOT_FOUND"
    """Upstream said ``{"status": "NOT_FOUND"}``: it does not know the request (or forgot it)."""
    OK = "OK"
    """Removed from the queue (200); it will never run."""


@dataclass(frozen=True, slots=True)
class SubmitHandle:
    """A request upstream accepted. The URLs point at the configured base, ready to call."""

    request_id: str
    status_url: str
    response_url: str
    cancel_url: str
    queue_position: int | None
    raw: dict[str, Any] = field(repr=False)
    """The submit answer as upstream sent it (original URLs, ``gateway_request_id``, ...)."""


@dataclass(frozen=True, slots=True)
class StatusReport:
    """One status answer. A failed request is COMPLETED with ``error``/``error_type`` set."""

    state: QueueState
    queue_position: int | None
    """Only when ``state`` is IN_QUEUE; None otherwise or when upstream left it out."""
    error: str | None
    error_type: str | None
    metrics: dict[str, Any]
    """``{"inference_time": seconds}`` once COMPLETED, ``{}`` before."""
    logs: list[Any] | None
    """Log entries when asked for with ``with_logs=True``, else usually None."""
    http_status: int


@dataclass(frozen=True, slots=True)
class UpstreamResult:
    """The final answer of a completed request: the model's own status code and body.

    ``ok`` is True for a 2xx (``body`` is the model output). Otherwise it is the request's own
    failure (422 validation, 499 cancelled, a fal-served 4xx/5xx, a start-timeout 504), which
    will not change if fetched again: record it, don't retry it.
    """

    http_status: int
    body: Any
    """Parsed JSON, or the text when the body is not JSON."""
    error_type: str | None
    """``error_type`` of the body, else the ``X-Fal-Error-Type`` header, else the ``type`` of the
    first ``detail`` item (e.g. ``content_policy_violation``); None on success."""
    ok: bool
    retryable: bool | None = None
    """The ``X-Fal-Retryable`` header when upstream sent one: the same input may succeed again."""
    billable_units: float | None = None
    """``x-fal-billable-units``: what upstream bills for the request, when it says."""
