"""The two error families callers branch on: transient (retry later) and rejected (permanent).

    UpstreamError
    ├── UpstreamTransient      retry later (``retry_after`` when upstream advised one)
    │   └── SubmitAmbiguous    submit only: the job may exist upstream; a resubmit may duplicate it
    └── UpstreamRejected       permanent: retrying the same call will not help
        └── UpstreamNotFound   status/result/cancel: upstream does not know (or forgot) the request

Messages are short (``submit: HTTP 422 from upstream: prompt: Field required``) and never carry
the key; ``body`` is JSON-serialisable (parsed JSON or text) so it can be stored as is.
"""

from typing import Any, Self

import httpx

from worker.upstream.responses import (
    error_body,
    error_type_of,
    parse_retry_after,
    redact,
    summarize,
)
from worker.upstream.types import Op


class UpstreamError(Exception):
    """Any failed upstream call. Catch a subclass; never branch on ``http_status``."""

    def __init__(
        self,
        message: str,
        *,
        op: Op,
        http_status: int | None = None,
        body: Any = None,
        error_type: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.op: Op = op
        self.http_status = http_status
        """None when no HTTP answer arrived (connect error, timeout, reset)."""
        self.body = body
        self.error_type = error_type

    @classmethod
    def from_response(cls, response: httpx.Response, *, op: Op, reason: str | None = None) -> Self:
        """The error for an HTTP answer; ``reason`` replaces the summary of the body."""
        body = error_body(response)
        summary = reason if reason is not None else summarize(body)
        return cls(
            f"{op}: HTTP {response.status_code} from upstream: {summary}",
            op=op,
            http_status=response.status_code,
            body=body,
            error_type=error_type_of(body, response.headers),
        )

    def redact(self, secrets: tuple[str, ...]) -> Self:
        """Scrub ``secrets`` from the message and body (in place), e.g. a relay echoing a token."""
        self.message = redact(self.message, secrets)
        self.args = (self.message,)
        self.body = redact(self.body, secrets)
        return self

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(op={self.op!r}, http_status={self.http_status!r}, "
            f"error_type={self.error_type!r}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors defeat Exception's default pickling (Celery pickles errors).
        return (_rebuild, (type(self), self.message, dict(self.__dict__)))


def _rebuild(cls: type[UpstreamError], message: str, state: dict[str, Any]) -> UpstreamError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class UpstreamTransient(UpstreamError):
    """Try again later: the call may succeed (rate limit, 5xx, ingress error, timeout, ...)."""

    def __init__(
        self,
        message: str,
        *,
        op: Op,
        http_status: int | None = None,
        body: Any = None,
        error_type: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, op=op, http_status=http_status, body=body, error_type=error_type)
        self.retry_after = retry_after
        """Seconds upstream asked us to wait (``Retry-After``), capped; None if it didn't say."""

    @classmethod
    def from_response(cls, response: httpx.Response, *, op: Op, reason: str | None = None) -> Self:
        error = super().from_response(response, op=op, reason=reason)
        error.retry_after = parse_retry_after(response.headers.get("retry-after"))
        return error


class SubmitAmbiguous(UpstreamTransient):
    """Submit only: the POST may have been accepted, but no usable answer came back (read
    timeout, reset after sending, gateway timeout, a 200 without a handle). Resubmitting may
    create a second upstream job: apply the caller's documented policy and record the event."""


class UpstreamRejected(UpstreamError):
    """Permanent: auth failure, validation error, user start-timeout, ... Do not retry."""


class UpstreamNotFound(UpstreamRejected):
    """status/result/cancel: upstream does not know the request (never existed or expired)."""
