"""Sending one client webhook: through ssrfguard, which resolves the destination's name once,
checks every address against the policy (``models/destinations.py``) and connects to the
address it checked, so a name that resolves to a refused address (or is re-pointed between the
check and the connect: DNS rebinding) reaches nothing. Redirects are not followed.

What the tenant may read about an attempt is :func:`describe`: the HTTP status and the first
KiB of a receiver's answer, or a coarse error class. A refused destination says only that it
was refused, never which address or why, so the delivery log cannot map the inside network.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from ssrfguard import Policy, SSRFGuardError
from ssrfguard.httpx import Client as GuardedClient

from models.destinations import AddressPolicy, RefusedDestination

log = logging.getLogger(__name__)
EXCERPT_BYTES = 1024
"""How much of a receiver's answer the delivery log keeps."""
MAX_RETRY_AFTER = 24 * 3600.0
USER_AGENT = "genqueue-webhook/0.1"


@dataclass(frozen=True)
class Message:
    """One signed delivery attempt: ``body`` is sent byte for byte as signed."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class Answer:
    """What a receiver answered."""

    status: int
    retry_after: float | None = None
    """Seconds a 429/503 asked us to wait (``Retry-After``), bounded to a day."""
    excerpt: str = ""
    """The first KiB of the answer's body, as text."""


Sender = Callable[[Message], Answer]
"""Sends a message. Raises :class:`Blocked` for a refused destination, ``httpx.HTTPError``
when the exchange failed, anything else for a bug (recorded all the same)."""


class Blocked(Exception):
    """The destination is refused by the address policy: nothing was sent."""


class Unsigned(Exception):
    """The tenant's signing secret could not be read: nothing was sent (the tick logs why)."""


class WebhookHttp:
    """The deliveries' HTTP clients: one per ssrfguard policy in use (public addresses only;
    any address, for ``GENQUEUE_WEBHOOK_ALLOWED_HOSTS``), each bounding every phase by
    ``timeout`` and following no redirect. ``resolver`` stands in for ``getaddrinfo`` (tests)."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        timeout: float,
        max_connections: int = 16,
        resolver: Callable[..., Any] | None = None,
    ) -> None:
        self.policy = policy
        self.timeout = timeout
        self._clients: dict[int, GuardedClient] = {}
        for guard in (policy.public_only, policy.any_address):
            self._clients[id(guard)] = GuardedClient(
                policy=guard,
                resolver=resolver,
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                limits=httpx.Limits(max_connections=max_connections),
                headers={"User-Agent": USER_AGENT},
                trust_env=False,
            )

    def send(self, message: Message) -> Answer:
        try:
            self.policy.check(message.url)
        except RefusedDestination as exc:
            raise Blocked(exc.reason) from None
        client = self._client_for(self.policy.policy_for(message.url))
        headers = {"Content-Type": "application/json", **message.headers}
        try:
            with client.stream("POST", message.url, content=message.body, headers=headers) as r:
                return Answer(r.status_code, _retry_after(r), _excerpt(r, self.timeout))
        except SSRFGuardError as exc:
            raise Blocked(str(exc)) from None

    def _client_for(self, guard: Policy) -> GuardedClient:
        return self._clients[id(guard)]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()

    def __enter__(self) -> "WebhookHttp":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(exc: BaseException) -> str:
    """What the tenant reads about an attempt that got no answer: a class, not a message (a
    message would say what answered inside)."""
    if isinstance(exc, Blocked):
        return "blocked: the destination is not allowed by the webhook address policy"
    if isinstance(exc, httpx.TimeoutException):
        return "timeout: no answer in time"
    if isinstance(exc, httpx.ConnectError):
        return "connect error: the destination could not be resolved or reached"
    if isinstance(exc, httpx.HTTPError):
        return "protocol error: the answer was not valid HTTP"
    if isinstance(exc, Unsigned):
        return "not sent: the tenant's signing secret could not be read (operator: see the logs)"
    return "internal error: genqueue could not make the attempt"


def _excerpt(response: httpx.Response, timeout: float) -> str:
    """The first KiB of the answer, read for at most ``timeout`` seconds, never more."""
    taken = bytearray()
    until = time.monotonic() + timeout
    for chunk in response.iter_bytes():
        taken += chunk
        if len(taken) >= EXCERPT_BYTES or time.monotonic() > until:
            break
    return bytes(taken[:EXCERPT_BYTES]).decode("utf-8", errors="replace")


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` of a 429 or 503, in seconds (a number or an HTTP date)."""
    raw = response.headers.get("Retry-After")
    if response.status_code not in (429, 503) or not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)
