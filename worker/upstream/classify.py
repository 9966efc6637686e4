"""Which failure is which: every transport error and non-success HTTP answer → one error class.

The rules (UPSTREAM.md §3, §6–§9, §12, §14, DESIGN.md §3 "Submit exactly once where possible"):

- nothing was sent (connect error/timeout, pool timeout, proxy refused) → transient, any op;
- something may have been sent (read/write timeout, reset, protocol error) → ``SubmitAmbiguous``
  on submit, transient on the idempotent GET/PUT;
- 408/409/429, ingress 502/503/504 (``nginx`` body, no ``x-fal-request-id``) → transient;
- 504 ``X-Fal-Request-Timeout-Type: user`` → rejected (our start deadline passed);
- 504 otherwise on submit → ``SubmitAmbiguous`` (a gateway gave up waiting on a POST it forwarded);
- other 5xx → transient; 404 on status/result/cancel → not found; other 4xx, 3xx → rejected.

``result`` first asks ``is_final_result``: a completed request answers with the model's own
error, which is a value (``UpstreamResult``), not an exception.
"""

import httpx

from worker.upstream.errors import (
    SubmitAmbiguous,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)
from worker.upstream.responses import (
    error_body,
    has_detail_list,
    is_fal_served,
    is_ingress_error,
    is_user_timeout,
)
from worker.upstream.types import Op

RETRY_STATUSES = frozenset({408, 409, 429})
"""4xx answers that mean "not now" rather than "never"."""

_NOTHING_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
_NEVER_SENDABLE = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)


def transport_error(op: Op, exc: Exception) -> UpstreamError:
    """The error for a call that got no HTTP answer."""
    what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if isinstance(exc, _NOTHING_SENT):
        return UpstreamTransient(f"{op}: {what} (nothing was sent)", op=op)
    if isinstance(exc, (*_NEVER_SENDABLE, httpx.InvalidURL)):
        return UpstreamRejected(f"{op}: cannot send the request: {what}", op=op)
    if op == "submit":
        return SubmitAmbiguous(
            f"submit: {what} after the request was sent; it may have been accepted", op=op
        )
    return UpstreamTransient(f"{op}: {what}", op=op)


def response_error(op: Op, response: httpx.Response) -> UpstreamError:
    """The error for a non-success HTTP answer (for ``result``: one that is not final)."""
    code = response.status_code
    if is_user_timeout(response):
        return UpstreamRejected.from_response(response, op=op, reason="start timeout expired")
    if op == "submit" and code == 504:
        return SubmitAmbiguous.from_response(
            response, op=op, reason="gateway timeout; the request may have been accepted"
        )
    if is_ingress_error(response):
        return UpstreamTransient.from_response(response, op=op, reason="ingress error (nginx)")
    if code in RETRY_STATUSES or code >= 500:
        return UpstreamTransient.from_response(response, op=op)
    if code == 400 and op == "result":
        return UpstreamTransient.from_response(response, op=op)
    if code == 404 and op != "submit":
        return UpstreamNotFound.from_response(response, op=op)
    if 300 <= code < 400:
        where = response.headers.get("location", "?")
        return UpstreamRejected.from_response(
            response, op=op, reason=f"unexpected redirect to {where}"
        )
    return UpstreamRejected.from_response(response, op=op)


def is_final_result(response: httpx.Response) -> bool:
    """Is this non-2xx answer to a result fetch the completed request's own final answer?

    Yes for 422 and 499, a user start-timeout 504, and any other 4xx/5xx that fal served
    (``x-fal-request-id``) or that names an ``error_type``. Not for 401/403 (our key), 404
    (unknown request), 408/409/429, ingress errors, or a 400 without an error type or a
    ``detail`` list (fal's "still in progress").
    """
    code = response.status_code
    if code < 400 or code in (401, 403, 404) or code in RETRY_STATUSES:
        return False
    if is_user_timeout(response):
        return True
    if is_ingress_error(response):
        return False
    body = error_body(response)
    if code == 400:
        return has_detail_list(body) or bool(_explicit_error_type(body, response))
    if code in (422, 499):
        return True
    return is_fal_served(response) or bool(_explicit_error_type(body, response))


def _explicit_error_type(body: object, response: httpx.Response) -> str | None:
    """An ``error_type`` in the body or header (a ``detail`` item's type does not count here)."""
    if isinstance(body, dict) and isinstance(body.get("error_type"), str):
        return str(body["error_type"]) or None
    return response.headers.get("x-fal-error-type") or None
