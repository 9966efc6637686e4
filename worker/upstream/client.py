"""The one class that talks to the fal queue API (or a relay, or the simulator)."""

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from types import TracebackType
from typing import Any, Self

import httpx
from pydantic import SecretStr

from worker.upstream import protocol
from worker.upstream.classify import is_final_result, response_error, transport_error
from worker.upstream.errors import UpstreamError, UpstreamRejected
from worker.upstream.responses import REQUEST_TIMEOUT_HEADER, redact
from worker.upstream.types import (
    Op,
    StatusReport,
    SubmitHandle,
    UpstreamCancelOutcome,
    UpstreamResult,
)

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://queue.fal.run"
AUTH_SCHEMES = {"key": "Key", "bearer": "Bearer"}
MIN_START_TIMEOUT = 1.0
"""fal's clients refuse ``X-Fal-Request-Timeout`` at or below one second."""
_MIN_REDACTED_LEN = 8


def _secrets_of(key: str | None) -> tuple[str, ...]:
    """What to scrub from answers: the key, and the secret half of a ``key_id:key_secret``."""
    if not key:
        return ()
    parts = [key, key.partition(":")[2]]
    return tuple(p for p in parts if len(p) >= _MIN_REDACTED_LEN)


class UpstreamClient:
    """Sync client for submit/status/result/cancel, returning typed answers.

    Every call makes **exactly one HTTP attempt**: no retry, and never a silent re-POST of a
    submit. The caller owns retries and decides them by exception type: ``UpstreamTransient``
    (retry later, honouring ``retry_after``), its subclass ``SubmitAmbiguous`` (the job may
    exist upstream), ``UpstreamRejected`` (permanent) and its subclass ``UpstreamNotFound``.

    One instance shares one connection pool and is safe to use from many threads. Create it
    in the process that uses it (after a prefork worker forks), and ``close()`` it at the end.
    The key is sent only to ``base_url``: URLs passed to ``status``/``result``/``cancel`` are
    re-homed onto it first, and it is scrubbed from anything returned, raised or logged.
    """

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        key: SecretStr | str | None = None,
        auth_scheme: str = "Key",
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_connections: int = 64,
        transport: httpx.BaseTransport | None = None,
        user_agent: str = "genqueue/0.1",
        observer: Callable[[str, int | None, float], None] | None = None,
    ) -> None:
        scheme = AUTH_SCHEMES.get(auth_scheme.strip().lower())
        if scheme is None:
            raise ValueError(f"auth_scheme must be 'Key' or 'Bearer', got {auth_scheme!r}")
        if not (connect_timeout > 0 and read_timeout > 0 and max_connections >= 1):
            raise ValueError("timeouts must be positive and max_connections at least 1")
        self.base_url = protocol.normalize_base_url(base_url)
        self.auth_scheme = scheme
        secret = key.get_secret_value() if isinstance(key, SecretStr) else key
        self._secrets = _secrets_of(secret)
        self._observer = observer
        headers = {"User-Agent": user_agent, "Accept": "application/json"}
        if secret:
            headers["Authorization"] = f"{scheme} {secret}"
        self._has_key = bool(secret)
        self._http = httpx.Client(
            headers=headers,
            # write: a submit body is small; pool: waiting for a free connection when every
            # one of max_connections is busy (threads of a poll batch) is bounded like a read.
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=read_timeout
            ),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
            follow_redirects=False,
        )

    def submit(
        self,
        endpoint_id: str,
        payload: dict[str, Any],
        *,
        start_timeout: float | None = None,
        webhook_url: str | None = None,
        priority: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> SubmitHandle:
        """POST the input to ``{base_url}/{endpoint_id}``; one attempt, never repeated.

        ``start_timeout`` (seconds, > 1) is sent as ``X-Fal-Request-Timeout``: a deadline for
        the job to *start*, after which upstream ends it with a 504. ``webhook_url`` is sent as
        ``?fal_webhook=``. ``priority`` (``normal`` or ``low``) is sent as
        ``X-Fal-Queue-Priority``, ``tags`` as ``X-Fal-Tags`` (a tag fal would drop is left
        out here: ``protocol.tags_header``). Raises ``SubmitAmbiguous`` when the job may exist
        without our knowing its id, ``UpstreamRejected`` for an invalid endpoint id or
        start_timeout.
        """
        headers: dict[str, str] = {}
        if start_timeout is not None:
            if not (math.isfinite(start_timeout) and start_timeout > MIN_START_TIMEOUT):
                raise self._scrub(
                    UpstreamRejected(
                        f"submit: start_timeout must be more than {MIN_START_TIMEOUT:g} s, "
                        f"got {start_timeout!r}",
                        op="submit",
                    )
                )
            headers[REQUEST_TIMEOUT_HEADER] = str(float(start_timeout))
        if priority is not None:
            headers[protocol.PRIORITY_HEADER] = priority
        tag_value = protocol.tags_header(tags or {})
        if tag_value:
            headers[protocol.TAGS_HEADER] = tag_value
        try:
            url = protocol.submit_url(self.base_url, endpoint_id, webhook_url=webhook_url)
        except ValueError as exc:
            raise self._scrub(UpstreamRejected(f"submit: {exc}", op="submit")) from None
        response = self._send("submit", "POST", url, json=payload, headers=headers)
        if not response.is_success:
            raise self._scrub(response_error("submit", response))
        try:
            handle = protocol.submit_handle(
                response, base_url=self.base_url, endpoint_id=endpoint_id
            )
        except UpstreamError as exc:
            raise self._scrub(exc) from None
        return replace(handle, raw=redact(handle.raw, self._secrets))

    def status(self, status_url: str, *, with_logs: bool = False) -> StatusReport:
        """GET the status (``?logs=1`` when ``with_logs``). 202 while queued or running, 200
        once COMPLETED, which is also how failures and cancellations end: fetch the result."""
        params = {"logs": "1"} if with_logs else None
        response = self._send("status", "GET", self._rehome(status_url), params=params)
        if not response.is_success:
            raise self._scrub(response_error("status", response))
        try:
            report = protocol.status_report(response)
        except UpstreamError as exc:
            raise self._scrub(exc) from None
        return replace(
            report,
            error=redact(report.error, self._secrets),
            logs=redact(report.logs, self._secrets),
        )

    def result(self, response_url: str) -> UpstreamResult:
        """GET the result of a COMPLETED request: its final answer, success or the model's own
        failure (see ``UpstreamResult``). Transient (incl. 400 "still in progress") and not-found
        answers raise."""
        response = self._send("result", "GET", self._rehome(response_url))
        if not (response.is_success or is_final_result(response)):
            raise self._scrub(response_error("result", response))
        answer = protocol.upstream_result(response)
        return replace(answer, body=redact(answer.body, self._secrets))

    def cancel(self, cancel_url: str) -> UpstreamCancelOutcome:
        """PUT the cancel. CANCELLATION_REQUESTED does not mean it stopped: keep polling."""
        response = self._send("cancel", "PUT", self._rehome(cancel_url))
        outcome = protocol.cancel_outcome(response)
        if outcome is None:
            raise self._scrub(response_error("cancel", response))
        return outcome

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        key = "'**********'" if self._has_key else "None"
        return (
            f"UpstreamClient(base_url={self.base_url!r}, auth_scheme={self.auth_scheme!r}, "
            f"key={key})"
        )

    def _rehome(self, url: str) -> str:
        return protocol.rewrite_url(url, self.base_url)

    def _scrub(self, error: UpstreamError) -> UpstreamError:
        return error.redact(self._secrets)

    def _send(
        self,
        op: Op,
        method: str,
        url: str,
        *,
        json: Any = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        """The single HTTP attempt of a call; transport failures become ``UpstreamError``s."""
        started = time.monotonic()
        try:
            response = self._http.request(method, url, json=json, headers=headers, params=params)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            self._observe(op, None, started)
            error = self._scrub(transport_error(op, exc))
            log.debug("upstream %s %s failed: %s", op, url.split("?")[0], error.message)
            raise error from exc
        self._observe(op, response.status_code, started)
        log.debug("upstream %s %s -> %d", op, url.split("?")[0], response.status_code)
        return response

    def _observe(self, op: Op, status_code: int | None, started: float) -> None:
        if self._observer is not None:
            self._observer(op, status_code, time.monotonic() - started)
