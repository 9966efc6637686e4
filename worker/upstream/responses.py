"""Reading fal's answers: bodies, error types, ingress vs fal-served, Retry-After (UPSTREAM §8)."""

import json
import math
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

REQUEST_ID_HEADER = "x-fal-request-id"
ERROR_TYPE_HEADER = "x-fal-error-type"
RETRYABLE_HEADER = "x-fal-retryable"
TIMEOUT_TYPE_HEADER = "x-fal-request-timeout-type"
REQUEST_TIMEOUT_HEADER = "X-Fal-Request-Timeout"

MAX_RETRY_AFTER_SECONDS = 600.0
"""A Retry-After longer than this is read as this (a broken header must not park a job for days)."""
MAX_TEXT_BODY_CHARS = 2000
"""Non-JSON error bodies (HTML from a proxy, ...) are kept up to this length."""
_MAX_MESSAGE_CHARS = 300
_MAX_DETAIL_ITEMS = 3


def parse_body(response: httpx.Response) -> Any:
    """The body as JSON when it parses, else its text (possibly empty)."""
    text = response.text
    try:
        return json.loads(text)
    except ValueError:
        return text


def error_body(response: httpx.Response) -> Any:
    """``parse_body`` with long text cut down: what an error or a record keeps."""
    body = parse_body(response)
    if isinstance(body, str) and len(body) > MAX_TEXT_BODY_CHARS:
        return body[:MAX_TEXT_BODY_CHARS] + "..."
    return body


def error_type_of(body: Any, headers: httpx.Headers) -> str | None:
    """fal's machine-readable error kind: ``error_type`` in the body, else ``X-Fal-Error-Type``,
    else the ``type`` of the first ``detail`` item of a validation error."""
    if isinstance(body, dict):
        value = body.get("error_type")
        if isinstance(value, str) and value:
            return value
    header = headers.get(ERROR_TYPE_HEADER)
    if header:
        return str(header)
    if isinstance(body, dict):
        detail = body.get("detail")
        if isinstance(detail, list) and detail and isinstance(detail[0], dict):
            kind = detail[0].get("type")
            if isinstance(kind, str) and kind:
                return kind
    return None


def has_detail_list(body: Any) -> bool:
    return isinstance(body, dict) and isinstance(body.get("detail"), list)


def retryable_flag(headers: httpx.Headers) -> bool | None:
    value = headers.get(RETRYABLE_HEADER)
    if value is None:
        return None
    return value.strip().lower() in ("1", "true", "yes")


def is_fal_served(response: httpx.Response) -> bool:
    """fal's own services stamp ``x-fal-request-id``; proxies in front of them don't."""
    return REQUEST_ID_HEADER in response.headers


def is_ingress_error(response: httpx.Response) -> bool:
    """A 502/503/504 from the ingress proxy (nginx), not from fal: nothing reached the queue's
    decision, so it is always safe to retry (fal-client's ``_is_ingress_error``)."""
    return (
        response.status_code in (502, 503, 504)
        and not is_fal_served(response)
        and b"nginx" in response.content.lower()
    )


def is_user_timeout(response: httpx.Response) -> bool:
    """504 + ``X-Fal-Request-Timeout-Type: user``: our own ``start_timeout`` ran out. Final."""
    timeout_type = response.headers.get(TIMEOUT_TYPE_HEADER, "")
    return response.status_code == 504 and timeout_type.strip().lower() == "user"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` (delta-seconds or HTTP-date), clamped to
    ``[0, MAX_RETRY_AFTER_SECONDS]``; None when absent or unreadable."""
    if not value or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def _loc(item: dict[str, Any]) -> str:
    loc = item.get("loc")
    if not isinstance(loc, list):
        return ""
    parts = [str(part) for part in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
    return ".".join(parts)


def _detail_items(detail: list[Any]) -> str:
    texts = []
    for item in detail[:_MAX_DETAIL_ITEMS]:
        if isinstance(item, dict):
            msg = str(item.get("msg") or item.get("type") or "invalid")
            where = _loc(item)
            texts.append(f"{where}: {msg}" if where else msg)
        else:
            texts.append(str(item))
    if len(detail) > _MAX_DETAIL_ITEMS:
        texts.append(f"(+{len(detail) - _MAX_DETAIL_ITEMS} more)")
    return "; ".join(texts)


def summarize(body: Any) -> str:
    """A short human line for an error body: ``prompt: Field required``, ``Request timed out``."""
    text: str
    if isinstance(body, dict):
        text = _summarize_object(body)
    elif isinstance(body, str):
        stripped = " ".join(body.split())
        if "<html" in stripped.lower():
            text = "HTML error page (nginx)" if "nginx" in stripped.lower() else "HTML error page"
        else:
            text = stripped or "empty body"
    elif body is None:
        text = "empty body"
    else:
        text = json.dumps(body)
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[: _MAX_MESSAGE_CHARS - 3] + "..."
    return text


def _summarize_object(body: dict[str, Any]) -> str:
    """The first of ``detail`` (a list of items, or a sentence), ``error``, ``message`` or
    ``status`` that says something; else the JSON itself."""
    detail = body.get("detail")
    if isinstance(detail, list) and detail:
        return _detail_items(detail)
    for key in ("detail", "error", "message", "status"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return value
    return json.dumps(body)[:_MAX_MESSAGE_CHARS]


def redact(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (JSON-like) with every occurrence of each secret replaced by ``**********``."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "**********")
        return value
    if isinstance(value, dict):
        return {redact(k, secrets): redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(item, secrets) for item in value]
    return value
