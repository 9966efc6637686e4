"""What the fal surface says about a generation: submit, status, result and cancel answers, and
the URLs in them (on genqueue's own host: configured, from a trusted proxy, or as requested).

Native statuses map onto fal's three: pending/submitting/queued are IN_QUEUE, running is
IN_PROGRESS, and every terminal state is COMPLETED (a failure carries ``error``/``error_type``,
as on fal; its result fetch answers with the failure's own status code and body).
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from api.proxies import TrustedProxies
from models.endpoint_id import app_id
from models.media_deletion import DELETED
from models.status import TERMINAL, GenerationStatus
from models.tables import Generation, GenerationEvent
from models.vocabulary import ErrorType

IN_QUEUE, IN_PROGRESS, COMPLETED = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"
NOT_COMPLETED = "Request is still in progress"
RESULT_DELETED = "result_deleted"
"""The result fetch's ``error_type`` (410) for a completed request whose output was deleted
(``DELETE /v1/generations/{id}``, or media retention): an error a client sees, never an empty
output that looks like a result."""

#: genqueue's own failures (not an upstream answer): the code their result fetch answers with.
OWN_ERROR_CODES: dict[str, int] = {
    ErrorType.DEADLINE_EXCEEDED: 504,
    ErrorType.SUBMIT_AMBIGUOUS: 502,
    ErrorType.RETRIES_EXHAUSTED: 503,
    ErrorType.RESULT_UNAVAILABLE: 502,
    ErrorType.CANCELLED: 499,
}
#: Failure types whose stored ``http_status``/``body`` is the upstream's answer to pass on.
UPSTREAM_ANSWERS = frozenset(
    {ErrorType.UPSTREAM_ERROR, ErrorType.UPSTREAM_REJECTED, ErrorType.CANCELLED}
)
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def _first(value: str | None) -> str | None:
    if not value:
        return None
    head = value.split(",", 1)[0].strip()
    return head or None


def public_base(request: Request, configured: str | None, proxies: TrustedProxies) -> str:
    """``GENQUEUE_PUBLIC_URL`` if set; else, from a trusted proxy (``GENQUEUE_TRUSTED_PROXIES``)
    its ``X-Forwarded-Proto``/``-Host``; else the scheme and ``Host`` of the request itself."""
    if configured:
        return configured
    forwarded = proxies.trusts(request.client.host if request.client else None)
    proto = _first(request.headers.get("x-forwarded-proto")) if forwarded else None
    if proto not in ("http", "https"):
        proto = request.url.scheme
    host = _first(request.headers.get("x-forwarded-host")) if forwarded else None
    host = host or request.headers.get("host")
    if not host or not _HOST.match(host):
        host = request.url.netloc
    return f"{proto}://{host}"


def fal_urls(base: str, model: str, request_id: str) -> dict[str, str]:
    """Queue URLs use owner/app only, never the endpoint path (UPSTREAM.md §1)."""
    response_url = f"{base}/{app_id(model)}/requests/{request_id}"
    return {
        "response_url": response_url,
        "status_url": f"{response_url}/status",
        "cancel_url": f"{response_url}/cancel",
    }


def submit_body(
    request_id: str, urls: dict[str, str], *, queue_position: int, webhook: bool
) -> dict[str, Any]:
    """The queue handle a submit answers with, as fal (and the seed's relay) gives it."""
    body: dict[str, Any] = {
        "status": IN_QUEUE,
        "request_id": request_id,
        **urls,
        "logs": None,
        "metrics": {},
        "queue_position": queue_position,
    }
    if webhook:
        body["gateway_request_id"] = request_id
    return body


def fal_status(status: str) -> str:
    native = GenerationStatus(status)
    if native in TERMINAL:
        return COMPLETED
    return IN_PROGRESS if native is GenerationStatus.RUNNING else IN_QUEUE


def _error_summary(gen: Generation) -> tuple[str, str] | None:
    """``(error, error_type)`` of a generation that ended without a result."""
    if gen.status == GenerationStatus.COMPLETED.value:
        return None
    err = gen.error or {}
    cancelled = gen.status == GenerationStatus.CANCELLED.value
    kind = str(err.get("type") or (ErrorType.CANCELLED if cancelled else GenerationStatus.FAILED))
    message = err.get("message") or ("Request was cancelled" if cancelled else "Request failed")
    return str(message), str(err.get("error_type") or kind)


def log_entries(events: Sequence[GenerationEvent]) -> list[dict[str, Any]]:
    """The generation's history in fal's log-entry shape."""
    entries = []
    for event in events:
        parts = [event.kind]
        if event.status:
            parts.append(f"status={event.status}")
        if event.queue_position is not None:
            parts.append(f"queue_position={event.queue_position}")
        level = "ERROR" if event.status == GenerationStatus.FAILED.value else "INFO"
        entries.append(
            {
                "message": " ".join(parts),
                "level": level,
                "source": "genqueue",
                "timestamp": event.at.isoformat(),
            }
        )
    return entries


def status_body(
    gen: Generation,
    urls: dict[str, str],
    *,
    queue_position: int,
    logs: list[dict[str, Any]] | None,
) -> dict[str, Any]:
    state = fal_status(gen.status)
    body: dict[str, Any] = {"status": state, "request_id": str(gen.id), **urls}
    if state == IN_QUEUE:
        body["queue_position"] = queue_position
    body["logs"] = logs
    body["metrics"] = {}
    if state == COMPLETED:
        if gen.run_seconds is not None:
            body["metrics"] = {"inference_time": round(gen.run_seconds, 3)}
        summary = _error_summary(gen)
        if summary is not None:
            body["error"], body["error_type"] = summary
    return body


@dataclass(frozen=True)
class FalAnswer:
    """A whole answer: status code, JSON body and headers."""

    status_code: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


def cancel_not_found() -> FalAnswer:
    return FalAnswer(404, {"status": "NOT_FOUND", "detail": "Request not found"})


def cancel_already_completed() -> FalAnswer:
    return FalAnswer(400, {"status": "ALREADY_COMPLETED", "detail": "Request is already completed"})


def cancel_requested() -> FalAnswer:
    return FalAnswer(202, {"status": "CANCELLATION_REQUESTED"})


def result_answer(gen: Generation, result: dict[str, Any] | None = None) -> FalAnswer:
    """The result route's answer: the output (``result`` when given: the stored files' URLs
    genqueue's own), 410 once deleted, 400 while unfinished, or the failure as it was."""
    if gen.status == GenerationStatus.COMPLETED.value:
        if gen.media_status == DELETED:
            detail = "The result of this request was deleted; its output and files are not kept"
            headers = {"X-Fal-Error-Type": RESULT_DELETED}
            return FalAnswer(410, {"detail": detail, "error_type": RESULT_DELETED}, headers)
        output = result if result is not None else gen.result
        return FalAnswer(200, output if output is not None else {})
    if GenerationStatus(gen.status) not in TERMINAL:
        return FalAnswer(400, {"detail": NOT_COMPLETED, "error_type": "not_completed"})
    err = gen.error or {}
    kind = err.get("type")
    upstream_code = err.get("http_status")
    upstream_body = err.get("body")
    error_type = err.get("error_type")
    if (
        kind in UPSTREAM_ANSWERS
        and isinstance(upstream_code, int)
        and 400 <= upstream_code <= 599
        and upstream_body is not None
    ):
        body = upstream_body
        if not isinstance(body, dict):
            body = {"detail": str(body), "error_type": error_type or kind}
        headers = {"X-Fal-Error-Type": str(error_type)} if error_type else {}
        return FalAnswer(upstream_code, body, headers)
    message, own_type = _error_summary(gen) or ("Request failed", "failed")
    own_type = str(kind or own_type)
    code = OWN_ERROR_CODES.get(own_type, 502)
    if own_type not in OWN_ERROR_CODES and isinstance(upstream_code, int):
        code = upstream_code if 400 <= upstream_code <= 599 else 502
    return FalAnswer(
        code, {"detail": message, "error_type": own_type}, {"X-Fal-Error-Type": own_type}
    )
