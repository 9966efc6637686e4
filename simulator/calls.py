"""One incoming queue call, as the HTTP layer hands it to the simulator."""

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field

from simulator.faults import Op


@dataclass(frozen=True, slots=True)
class Call:
    """A queue API call: ``op`` on ``app`` (``owner/app``), naming ``request_id`` or ``endpoint``.

    ``headers`` has lower-case names. ``base_url`` is the scheme and host URLs should point at.
    ``caller`` is the client's address (its IP), so a test spread over several hosts can tell
    which host made each call.
    """

    op: Op
    app: str
    base_url: str
    request_id: str | None = None
    endpoint: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    query: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    stream: bool = False
    caller: str | None = None

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")

    @property
    def wants_logs(self) -> bool:
        return self.query.get("logs", "").strip().lower() in ("1", "true", "yes")


def authorized(expected: str | None, given: str | None) -> bool:
    """Whether ``given`` is the exact expected Authorization value (None expected: anything)."""
    if expected is None:
        return True
    if given is None:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def auth_scheme(value: str | None) -> str | None:
    """``"Key"`` or ``"Bearer"`` (case-insensitive), else None."""
    if not value:
        return None
    scheme = value.split(None, 1)[0].lower()
    return {"key": "Key", "bearer": "Bearer"}.get(scheme)


def auth_sha256(value: str | None) -> str | None:
    """A fingerprint of the Authorization value; the value itself is never stored."""
    if value is None:
        return None
    return hashlib.sha256(value.encode()).hexdigest()
