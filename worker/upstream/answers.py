"""Successful answers → typed results (UPSTREAM.md §4, §5, §6, §7).

A malformed success is a protocol error: on submit it is ``SubmitAmbiguous`` (the job may exist),
on status it is transient (ask again).
"""

from typing import Any

import httpx

from worker.upstream.errors import SubmitAmbiguous, UpstreamTransient
from worker.upstream.responses import error_body, error_type_of, parse_body, retryable_flag
from worker.upstream.types import (
    QueueState,
    StatusReport,
    SubmitHandle,
    UpstreamCancelOutcome,
    UpstreamResult,
)
from worker.upstream.urls import request_url, rewrite_url

_URL_KEYS = {"status_url": "/status", "response_url": "", "cancel_url": "/cancel"}


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def _str_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


def submit_handle(response: httpx.Response, *, base_url: str, endpoint_id: str) -> SubmitHandle:
    """The handle from a 2xx submit answer. URLs are re-homed onto ``base_url``; one that
    upstream left out is built from the documented ``{owner}/{app}/requests/{id}`` rule."""
    data = parse_body(response)
    request_id = data.get("request_id") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(request_id, str) or not request_id.strip():
        raise SubmitAmbiguous.from_response(
            response, op="submit", reason="answer carries no request_id; the job may exist"
        )
    urls: dict[str, str] = {}
    for key, suffix in _URL_KEYS.items():
        given = data.get(key)
        if isinstance(given, str) and given.strip():
            urls[key] = rewrite_url(given, base_url)
        else:
            urls[key] = request_url(base_url, endpoint_id, request_id, suffix)
    return SubmitHandle(
        request_id=request_id,
        status_url=urls["status_url"],
        response_url=urls["response_url"],
        cancel_url=urls["cancel_url"],
        queue_position=_int_or_none(data.get("queue_position")),
        raw=data,
    )


def status_report(response: httpx.Response) -> StatusReport:
    """The report from a 2xx status answer; the body's ``status`` decides, not the HTTP code."""
    try:
        data = response.json()
    except ValueError:
        raise UpstreamTransient.from_response(
            response, op="status", reason="malformed JSON in status answer"
        ) from None
    raw_state = data.get("status") if isinstance(data, dict) else None
    if not isinstance(raw_state, str) or raw_state not in QueueState.__members__:
        raise UpstreamTransient.from_response(
            response, op="status", reason=f"unknown status value {raw_state!r}"
        )
    state = QueueState(raw_state)
    metrics = data.get("metrics")
    logs = data.get("logs")
    return StatusReport(
        state=state,
        queue_position=(
            _int_or_none(data.get("queue_position")) if state is QueueState.IN_QUEUE else None
        ),
        error=_str_or_none(data.get("error")),
        error_type=_str_or_none(data.get("error_type")),
        metrics=metrics if isinstance(metrics, dict) else {},
        logs=logs if isinstance(logs, list) else None,
        http_status=response.status_code,
    )


def cancel_outcome(response: httpx.Response) -> UpstreamCancelOutcome | None:
    """The outcome upstream stated, or for a 2xx without a readable one, what its code implies.
    None: this answer is not an outcome (an error to classify)."""
    body = parse_body(response)
    stated = body.get("status") if isinstance(body, dict) else None
    code = response.status_code
    known = isinstance(stated, str) and stated in UpstreamCancelOutcome.__members__
    if known and (200 <= code < 300 or code in (400, 404)):
        return UpstreamCancelOutcome(str(stated))
    if 200 <= code < 300:
        return (
            UpstreamCancelOutcome.CANCELLATION_REQUESTED
            if code == 202
            else UpstreamCancelOutcome.OK
        )
    return None


def upstream_result(response: httpx.Response) -> UpstreamResult:
    ok = response.is_success
    body = parse_body(response) if ok else error_body(response)
    return UpstreamResult(
        http_status=response.status_code,
        body=body,
        error_type=None if ok else error_type_of(body, response.headers),
        ok=ok,
        retryable=retryable_flag(response.headers),
    )
