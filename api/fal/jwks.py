"""fal's webhook signing keys: the JWKS at ``GENQUEUE_FAL_JWKS_URL``, fetched and cached.

The keys are fetched on first use and kept ``ttl`` seconds (at most 24 h, as fal advises). A
signature that no cached key verifies may be a key fal rotated in: the caller asks for a
refresh, which fetches again at most once per ``refresh_interval`` seconds, so forged traffic
cannot make genqueue hammer the key server. A fetch that fails leaves no keys once the cached
ones have expired: webhooks are then refused with 503 (fal tries again), and polling carries on.

Only ``kty: OKP`` / ``crv: Ed25519`` keys are used; the ED25519 maths is the ``cryptography``
package's.
"""

import base64
import binascii
import logging
import threading
import time
from collections.abc import Callable

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log = logging.getLogger(__name__)
ED25519_KEY_BYTES = 32


class JwksUnavailable(Exception):
    """The JWKS could not be fetched (or held no ED25519 key) and no fresh copy is cached."""


def parse_jwks(document: object) -> list[Ed25519PublicKey]:
    """The ED25519 public keys of a JWKS document; others are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a JWKS: no 'keys' list")
    keys = []
    for jwk in document["keys"]:
        if not isinstance(jwk, dict) or (jwk.get("kty"), jwk.get("crv")) != ("OKP", "Ed25519"):
            continue
        x = jwk.get("x")
        if not isinstance(x, str):
            continue
        try:
            raw = base64.urlsafe_b64decode(x + "=" * (-len(x) % 4))
        except (binascii.Error, ValueError):
            continue
        if len(raw) == ED25519_KEY_BYTES:
            keys.append(Ed25519PublicKey.from_public_bytes(raw))
    return keys


class KeysNotCached(Exception):
    """:class:`CachedKeys` would have to fetch: verify on a worker thread instead."""


class CachedKeys:
    """The cache's fresh keys, never fetching (so a signature can be checked on the event
    loop): raises :class:`KeysNotCached` where :class:`JwksCache` would fetch."""

    def __init__(self, cache: "JwksCache") -> None:
        self._cache = cache

    def keys(self) -> list[Ed25519PublicKey]:
        found = self._cache.cached()
        if found is None:
            raise KeysNotCached
        return found

    def refresh(self) -> list[Ed25519PublicKey] | None:
        raise KeysNotCached


class JwksCache:
    """The keys, fetched lazily; thread-safe (one fetch at a time)."""

    def __init__(
        self,
        *,
        url: str,
        ttl: float = 86400.0,
        refresh_interval: float = 60.0,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.ttl = min(ttl, 86400.0)
        self.refresh_interval = refresh_interval
        self._clock = clock
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)
        self._lock = threading.Lock()
        self._keys: list[Ed25519PublicKey] = []
        self._fetched_at: float | None = None
        """When the cached keys were fetched (None: never)."""
        self._tried_at: float | None = None
        """When a fetch was last tried, whether it worked or not."""
        self.fetches = 0

    def keys(self) -> list[Ed25519PublicKey]:
        """The cached keys, fetched first when there are none or they are older than ``ttl``;
        raises :class:`JwksUnavailable` when there are none to give."""
        with self._lock:
            now = self._clock()
            fresh = self._fetched_at is not None and now - self._fetched_at < self.ttl
            if not fresh and self._may_try(now):
                self._fetch(now)
            fresh = self._fetched_at is not None and now - self._fetched_at < self.ttl
            if not fresh or not self._keys:
                raise JwksUnavailable(f"no signing keys: {self.url} could not be fetched")
            return list(self._keys)

    def cached(self) -> list[Ed25519PublicKey] | None:
        """The cached keys while they are fresh, without fetching: None when :meth:`keys`
        would have to fetch (or fail)."""
        with self._lock:
            fresh = self._fetched_at is not None and self._clock() - self._fetched_at < self.ttl
            return list(self._keys) if fresh and self._keys else None

    def refresh(self) -> list[Ed25519PublicKey] | None:
        """Fetch again because a signature failed against the cached keys: the new keys, or
        None when the last try was less than ``refresh_interval`` ago (or this one failed)."""
        with self._lock:
            now = self._clock()
            if self._tried_at is not None and now - self._tried_at < self.refresh_interval:
                return None
            return list(self._keys) if self._fetch(now) else None

    def close(self) -> None:
        self._http.close()

    def _may_try(self, now: float) -> bool:
        """An empty or expired cache fetches at once, but a failing key server is asked at
        most once a second (every webhook waits for that one try)."""
        return self._tried_at is None or now - self._tried_at >= min(1.0, self.refresh_interval)

    def _fetch(self, now: float) -> bool:
        self._tried_at = now
        self.fetches += 1
        try:
            response = self._http.get(self.url)
            response.raise_for_status()
            keys = parse_jwks(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("fetching fal's JWKS from %s failed: %s", self.url, exc)
            return False
        if not keys:
            log.warning("fal's JWKS at %s holds no ED25519 key", self.url)
            return False
        self._keys, self._fetched_at = keys, now
        log.info("fetched %d webhook signing key(s) from %s", len(keys), self.url)
        return True
