"""API keys: ``Authorization: Bearer <key>`` (relays) or ``Key <key>`` (fal), looked up hashed.

Keys the database accepted are remembered, by digest, for ``GENQUEUE_API_KEY_CACHE_SECONDS``
(:class:`KeyCache`), so a busy client costs no database lookup per request: a revoked key
keeps working on each API process for at most that long, and a tenant's new rate limit takes
as long to apply. A refused key is looked up every time.
"""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from models.keys import find_key, hash_key

SCHEMES = ("bearer", "key")
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="genqueue", Key realm="genqueue"'}
MISSING = "Missing API key: send 'Authorization: Bearer <key>' or 'Authorization: Key <key>'"
MALFORMED = "Malformed Authorization header: expected 'Bearer <key>' or 'Key <key>'"
INVALID = "Invalid or revoked API key"
MAX_CACHED = 10_000


@dataclass(frozen=True)
class Caller:
    """Who a valid key belongs to."""

    tenant_id: uuid.UUID
    key_id: uuid.UUID
    tenant: str = ""
    """The tenant's name."""
    rate_limit: float | None = None
    burst: int | None = None
    """The tenant's create rate limit, as of the lookup (cached like the key)."""
    monthly_budget: float | None = None


def presented_key(header: str | None) -> str:
    if not header or not header.strip():
        raise ApiError(401, MISSING, headers=CHALLENGE)
    scheme, _, key = header.strip().partition(" ")
    key = key.strip()
    if scheme.lower() not in SCHEMES or not key or " " in key:
        raise ApiError(401, MALFORMED, headers=CHALLENGE)
    return key


class Authenticator:
    """Who a request's key belongs to: from the cache, or on a miss from the database (in a
    worker thread: the event loop never waits on a lookup). One per app."""

    def __init__(self, *, sessions: Callable[[], sessionmaker[Session]], ttl: float) -> None:
        self._sessions = sessions
        self.cache = KeyCache(ttl=ttl)

    async def caller(self, authorization: str | None) -> Caller:
        """The caller presenting ``authorization`` (the header); 401 unless a live key."""
        key = presented_key(authorization)
        caller = self.cache.get(key)
        if caller is None:
            caller = await run_in_threadpool(self._lookup, key)
            self.cache.put(key, caller)
        return caller

    def _lookup(self, key: str) -> Caller:
        with self._sessions()() as session:
            row = find_key(session, key)
            if row is None:
                raise ApiError(401, INVALID, headers=CHALLENGE)
            tenant = row.tenant
            return Caller(
                tenant_id=row.tenant_id,
                key_id=row.id,
                tenant=tenant.name,
                rate_limit=tenant.rate_limit,
                burst=tenant.burst,
                monthly_budget=tenant.monthly_budget,
            )


class KeyCache:
    """Callers of keys the database accepted, by digest, each for ``ttl`` seconds (0: none)."""

    def __init__(self, *, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, Caller]] = {}

    def get(self, presented: str) -> Caller | None:
        if self.ttl <= 0:
            return None
        digest = hash_key(presented)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if entry[0] <= self._clock():
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, presented: str, value: Caller) -> None:
        if self.ttl <= 0:
            return
        digest = hash_key(presented)
        now = self._clock()
        with self._lock:
            if len(self._entries) >= MAX_CACHED:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= MAX_CACHED:
                    self._entries.clear()
            self._entries[digest] = (now + self.ttl, value)
