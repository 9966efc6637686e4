"""API keys seen recently, so a busy client costs no database lookup per request.

Only keys the database accepted are remembered, by digest, for ``ttl`` seconds: a revoked key
keeps working on each API process for at most that long. A refused key is looked up every time.
"""

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from models.keys import hash_key

MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Caller:
    """Who a valid key belongs to."""

    tenant_id: uuid.UUID
    key_id: uuid.UUID


class KeyCache:
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
            if len(self._entries) >= MAX_ENTRIES:
                self._entries = {k: e for k, e in self._entries.items() if e[0] > now}
                if len(self._entries) >= MAX_ENTRIES:
                    self._entries.clear()
            self._entries[digest] = (now + self.ttl, value)
