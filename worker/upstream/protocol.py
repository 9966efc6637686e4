"""fal's queue protocol as data (UPSTREAM.md §1, §4–§7): where each call goes, and what a
successful answer says, as typed results.

Submit goes to ``{base}/{endpoint_id}``. Status, result and cancel live under the *app*
(``owner/app``), not the full endpoint path: ``{base}/fal-ai/flux-pro/requests/{id}/status``.
Upstream returns those URLs in the submit answer, but relays pass fal's body through verbatim,
so they name ``queue.fal.run``, which the relay's token cannot call: every URL is therefore
re-homed onto the configured base before use.

A malformed success is a protocol error: on submit it is ``SubmitAmbiguous`` (the job may exist),
on status it is transient (ask again).
"""

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

import httpx

from models.endpoint_id import app_length
from worker.upstream.errors import SubmitAmbiguous, UpstreamTransient
from worker.upstream.responses import error_body, error_type_of, parse_body, retryable_flag
from worker.upstream.types import (
    QueueState,
    StatusReport,
    SubmitHandle,
    UpstreamCancelOutcome,
    UpstreamResult,
)

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]*$")
PRIORITY_HEADER = "X-Fal-Queue-Priority"
TAGS_HEADER = "X-Fal-Tags"
BILLABLE_UNITS_HEADER = "x-fal-billable-units"
_TAG_KEY = re.compile(r"^[a-z0-9._-]{1,64}$")
_TAG_VALUE = re.compile(r"^[\x21-\x7e]{1,256}$")
MAX_TAGS = 10
MAX_TAGS_BYTES = 1024


def tags_header(tags: Mapping[str, str]) -> str:
    """``X-Fal-Tags``: ``key=value`` pairs joined by commas (UPSTREAM.md, request tags), at most
    ten, 1 KB in all. A tag fal would drop (a key outside ``[a-z0-9._-]{1,64}`` or in the
    reserved ``fal.`` space; a value over 256 characters, or with a space, comma or ``=`` or
    beyond printable ASCII) is left out here, so the header says only what fal keeps."""
    pairs = [
        f"{key}={value}"
        for key, value in tags.items()
        if _TAG_KEY.match(key)
        and not key.startswith("fal.")
        and _TAG_VALUE.match(value)
        and not set(value) & {",", "="}
    ][:MAX_TAGS]
    header = ",".join(pairs)
    return header if len(header) <= MAX_TAGS_BYTES else ""


def _segments(endpoint_id: str) -> list[str]:
    parts = endpoint_id.strip("/").split("/")
    if not all(_SEGMENT.match(part) for part in parts):
        raise ValueError(f"invalid endpoint id {endpoint_id!r}")
    return parts


def app_base(endpoint_id: str) -> str:
    """The ``[namespace/]owner/app`` part of an endpoint id, under which its requests live.

    >>> app_base("fal-ai/flux-pro/kontext/text-to-image")
    'fal-ai/flux-pro'
    >>> app_base("workflows/someone/my-flow/run")
    'workflows/someone/my-flow'
    """
    parts = _segments(endpoint_id)
    size = app_length(parts)
    if len(parts) < size:
        raise ValueError(
            f"invalid endpoint id {endpoint_id!r}: expected [namespace/]owner/app[/path]"
        )
    return "/".join(parts[:size])


def normalize_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash; raises ValueError unless it is an http(s) URL."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"upstream base URL must be http(s)://host[:port][/prefix], got {base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError("upstream base URL must not carry a query or fragment")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def submit_url(base_url: str, endpoint_id: str, *, webhook_url: str | None = None) -> str:
    """``{base}/{endpoint_id}``, with ``?fal_webhook=<urlencoded>`` when a webhook is wanted."""
    app_base(endpoint_id)  # validates the shape
    url = f"{base_url.rstrip('/')}/{endpoint_id.strip('/')}"
    if webhook_url:
        url += "?" + urlencode({"fal_webhook": webhook_url})
    return url


def request_url(base_url: str, endpoint_id: str, request_id: str, suffix: str = "") -> str:
    """The documented URL of a request, for when upstream's answer left one out (fal says to
    prefer the URLs it returns; this is the fallback). ``suffix`` is ``""``, ``"/status"`` or
    ``"/cancel"``."""
    rid = quote(request_id, safe="")
    return f"{base_url.rstrip('/')}/{app_base(endpoint_id)}/requests/{rid}{suffix}"


def rewrite_url(url: str, base_url: str) -> str:
    """``url`` with its scheme and host(:port) replaced by ``base_url``'s, and ``base_url``'s path
    prefix put in front of its path (unless the path already starts with it). Query is kept.

    >>> rewrite_url("https://queue.fal.run/fal-ai/flux-pro/requests/r/status", "http://relay:8080/fal/")
    'http://relay:8080/fal/fal-ai/flux-pro/requests/r/status'

    Idempotent: rewriting an already rewritten URL changes nothing.
    """
    base = urlsplit(base_url.strip())
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ValueError(f"base URL must be http(s)://host[:port][/prefix], got {base_url!r}")
    target = urlsplit(url.strip())
    prefix = base.path.rstrip("/")
    path = target.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    if prefix and not (path == prefix or path.startswith(prefix + "/")):
        path = prefix + path
    return urlunsplit((base.scheme, base.netloc, path, target.query, ""))


# ---- answers ----------------------------------------------------------------------------------

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
        billable_units=billable_units(response.headers),
    )


def billable_units(headers: httpx.Headers) -> float | None:
    """``x-fal-billable-units`` as a number, or None when absent or not a number ≥ 0."""
    raw = headers.get(BILLABLE_UNITS_HEADER)
    try:
        units = float(raw) if raw is not None else None
    except ValueError:
        return None
    return units if units is not None and 0 <= units < float("inf") else None
