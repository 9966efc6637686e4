"""Rate limits on create, per tenant, shared by every API process through Redis.

A tenant with a ``rate_limit`` of R creates a second and a ``burst`` of B (default: R rounded
up) may create B generations in any window of B / R seconds (rounded up to whole seconds, so
the rate is never above R). The count is kept by the ``limits`` library's moving-window
limiter in Redis (``GENQUEUE_RATE_LIMIT_URL``, by default the broker): one Lua script a create,
atomic, the same for every API process and host. It is checked before anything is stored, so a
refused create (429, ``Retry-After``) leaves nothing behind. Each tenant has its own key: one
tenant over its limit costs the others nothing but its own round trips. Tenants without a
``rate_limit`` never touch Redis. Redis unreachable: the create is refused with 503 (a limit
that cannot be checked is not waived).
"""

import asyncio
import logging
import math
import time
import uuid

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

from api.errors import ApiError

log = logging.getLogger(__name__)
NAMESPACE = "genqueue-create"


def storage_uri(url: str) -> str:
    """``limits``' name for a Redis URL: kombu's ``redis+socket:///path`` (what ``genqueue up``
    uses) and redis-py's ``unix:///path`` become ``async+redis+unix:///path``; ``redis://`` and
    ``rediss://`` get the ``async+`` prefix. Anything else is not a Redis genqueue can use."""
    for prefix in ("redis+socket://", "unix://"):
        if url.startswith(prefix):
            return "async+redis+unix://" + url.removeprefix(prefix)
    if url.startswith(("redis://", "rediss://")):
        return "async+" + url
    raise ValueError(f"GENQUEUE_RATE_LIMIT_URL must be a Redis URL, not {url.split(':')[0]}://")


def window(rate: float, burst: int | None) -> RateLimitItem:
    """``burst`` creates per ``ceil(burst / rate)`` seconds."""
    amount = burst or max(1, math.ceil(rate))
    return RateLimitItemPerSecond(amount, max(1, math.ceil(amount / rate)), namespace=NAMESPACE)


class CreateLimiter:
    """One per app; the Redis client is made for the event loop that first uses it."""

    def __init__(self, *, url: str) -> None:
        self._url = url
        self._limiter: MovingWindowRateLimiter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _for_this_loop(self) -> MovingWindowRateLimiter:
        loop = asyncio.get_running_loop()
        if self._limiter is None or self._loop is not loop:
            storage = RedisStorage(
                storage_uri(self._url),
                implementation="redispy",
                wrap_exceptions=True,
                socket_timeout=2.0,
                socket_connect_timeout=2.0,
            )
            self._limiter, self._loop = MovingWindowRateLimiter(storage), loop
        return self._limiter

    async def check(
        self, tenant_id: uuid.UUID, tenant: str, *, rate: float | None, burst: int | None
    ) -> None:
        """Count one create of ``tenant``, or raise 429 (over its rate) or 503 (no Redis)."""
        if rate is None:
            return
        item = window(rate, burst)
        try:
            limiter = self._for_this_loop()
        except ValueError as exc:  # a setting that names no Redis: say so, never wave through
            log.error("%s", exc)
            raise ApiError(503, f"Rate limit store misconfigured: {exc}") from None
        try:
            if await limiter.hit(item, str(tenant_id)):
                return
            stats = await limiter.get_window_stats(item, str(tenant_id))
        except StorageError as exc:
            log.warning("rate limit store unreachable: %s", type(exc.storage_error).__name__)
            raise ApiError(
                503, "Rate limit store unavailable; try again shortly", headers={"Retry-After": "5"}
            ) from None
        retry = max(1, math.ceil(stats.reset_time - time.time()))
        raise ApiError(
            429,
            f"Rate limit exceeded: tenant '{tenant}' may create {item.amount} generations "
            f"in {item.multiples} s ({rate:g}/s); retry in {retry} s",
            headers={"Retry-After": str(retry)},
        )
