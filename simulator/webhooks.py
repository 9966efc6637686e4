"""Webhook delivery (``?fal_webhook=``), the way fal does it (UPSTREAM.md §11).

A daemon thread takes the webhooks of jobs that ended, schedules them and hands each attempt to
a small pool of sending threads. Every delivery is signed (``signing.py``); one that does not
get a 2xx is tried again, 10 tries in all over about two hours (the gaps double from 14 s;
``webhook_retry_scale`` compresses them). The queue itself advances lazily, so while jobs with a
webhook are unfinished the thread also polls the simulator every ``poll_interval`` seconds.

Fault knobs (``SimulatorConfig``): ``webhook_drop`` (share never sent), ``webhook_duplicate``
(share sent twice), ``webhook_delay`` (each copy waits a random 0..delay seconds, so they
arrive out of order), ``webhook_forge`` (before each genuine delivery, one forged copy of each
kind listed: ``bad_signature``, ``wrong_key``, ``stale_timestamp``, ``other_payload``; forged
copies are never retried).
"""

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from simulator.config import SimulatorConfig
from simulator.signing import SIGNATURE, WebhookSigner

logger = logging.getLogger(__name__)

Delivery = tuple[str, dict[str, Any], int]
"""(url, payload, copies) of a job's webhook."""
TakeDue = Callable[[], tuple[list[Delivery], int]]
TRIES = 10
"""fal: "it will retry 10 times in the span of 2 hours"."""
FIRST_GAP = 7200.0 / (2 ** (TRIES - 1) - 1)
"""Seconds before the second try; each later gap doubles, the nine of them adding up to 2 h."""
STALE_SECONDS = 3600
"""How far in the past a ``stale_timestamp`` forgery claims to have been signed."""


def retry_gap(attempt: int, scale: float) -> float:
    """Seconds between try ``attempt`` (1-based) and the next."""
    return float(FIRST_GAP * 2.0 ** (attempt - 1) * scale)


@dataclass(order=True)
class _Attempt:
    due: float
    seq: int
    url: str = field(compare=False)
    payload: dict[str, Any] = field(compare=False)
    attempt: int = field(default=1, compare=False)
    forgeries: tuple[str, ...] = field(default=(), compare=False)
    """Forged copies sent, one after the other, just before this try (first tries only)."""


class WebhookSender:
    """Delivers due webhooks in the background; never blocks a request."""

    def __init__(
        self,
        take_due: TakeDue,
        *,
        config: Callable[[], SimulatorConfig] = SimulatorConfig,
        signer: WebhookSigner | None = None,
        poll_interval: float = 0.05,
        timeout: float = 5.0,
        senders: int = 8,
    ) -> None:
        self._take_due = take_due
        self._config = config
        self.signer = signer or WebhookSigner()
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._senders = senders
        self._rng = random.Random()
        self._seq = itertools.count()
        self._heap: list[_Attempt] = []
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._log: dict[str, list[dict[str, Any]]] = {}
        self._last_body: tuple[str, dict[str, Any]] | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wake(self) -> None:
        """A job with a webhook was submitted: make sure the thread runs."""
        with self._start_lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="simulator-webhooks", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def counts(self) -> dict[str, int]:
        """Deliveries by outcome: ``delivered``, ``failed`` (a try that will be repeated or
        was the last), ``gave_up``, ``dropped``, ``duplicated``, ``forged``, ``forged_refused``
        (a forgery the receiver answered 4xx), ``forged_accepted``."""
        with self._lock:
            return dict(self._counts)

    def attempts(self, request_id: str) -> list[dict[str, Any]]:
        """Every try for one request: ``{"attempt", "forged", "status", "sent_at"}`` (status
        None when the POST got no answer, ``"dropped"`` for a webhook the fault dropped, which
        has no ``sent_at``; ``sent_at`` is the unix time its POST began)."""
        with self._lock:
            return [dict(a) for a in self._log.get(request_id, [])]

    def reset(self) -> None:
        with self._lock:
            self._heap.clear()
            self._counts.clear()
            self._log.clear()
            self._last_body = None

    # ----------------------------------------------------------------- internals
    def _run(self) -> None:
        with (
            httpx.Client(timeout=self._timeout) as client,
            ThreadPoolExecutor(self._senders, thread_name_prefix="sim-webhook") as pool,
        ):
            while not self._stop.is_set():
                self._wake.clear()
                due, pending = self._take_due()
                now = time.monotonic()
                for url, payload, copies in due:
                    self._schedule(url, payload, copies, now)
                for attempt in self._pop_ready(now):
                    pool.submit(self._try, client, attempt)
                self._wake.wait(self._sleep(pending))

    def _sleep(self, pending: int) -> float | None:
        with self._lock:
            until_next = self._heap[0].due - time.monotonic() if self._heap else None
        if until_next is not None:
            until_next = max(0.0, until_next)
            return min(self._poll_interval, until_next) if pending else until_next
        return self._poll_interval if pending else None

    def _schedule(self, url: str, payload: dict[str, Any], copies: int, now: float) -> None:
        cfg = self._config()
        request_id = str(payload.get("request_id", ""))
        with self._lock:
            if self._rng.random() < cfg.webhook_drop:
                self._counts["dropped"] += 1
                self._log.setdefault(request_id, []).append(
                    {"attempt": 0, "forged": None, "status": "dropped"}
                )
                return
            if self._rng.random() < cfg.webhook_duplicate:
                copies += 1
            if copies > 1:
                self._counts["duplicated"] += copies - 1
            for _ in range(copies):
                at = now + self._rng.uniform(0.0, cfg.webhook_delay)
                forge = tuple(cfg.webhook_forge)
                self._push(_Attempt(at, next(self._seq), url, payload, forgeries=forge))

    def _push(self, attempt: _Attempt) -> None:
        heapq.heappush(self._heap, attempt)

    def _pop_ready(self, now: float) -> list[_Attempt]:
        ready = []
        with self._lock:
            while self._heap and self._heap[0].due <= now:
                ready.append(heapq.heappop(self._heap))
        return ready

    def _try(self, client: httpx.Client, attempt: _Attempt) -> None:
        for kind in attempt.forgeries:
            self._post(client, attempt, kind)
        status = self._post(client, attempt, None)
        with self._lock:
            if status is not None and 200 <= status < 300:
                self._counts["delivered"] += 1
                self._last_body = (str(attempt.payload.get("request_id", "")), attempt.payload)
                return
            self._counts["failed"] += 1
            if attempt.attempt >= TRIES:
                self._counts["gave_up"] += 1
                return
            scale = self._config().webhook_retry_scale
            due = time.monotonic() + retry_gap(attempt.attempt, scale)
            self._push(
                _Attempt(due, next(self._seq), attempt.url, attempt.payload, attempt.attempt + 1)
            )
        self._wake.set()

    def _post(self, client: httpx.Client, attempt: _Attempt, forged: str | None) -> int | None:
        """One POST, genuine or forged; its status code (None: no answer), logged."""
        body, headers = self._signed(attempt, forged)
        headers["Content-Type"] = "application/json"
        status: int | None
        sent_at = time.time()
        try:
            status = client.post(attempt.url, content=body, headers=headers).status_code
        except httpx.HTTPError as exc:
            logger.warning("webhook %s try %d failed: %s", attempt.url, attempt.attempt, exc)
            status = None
        request_id = str(attempt.payload.get("request_id", ""))
        with self._lock:
            self._log.setdefault(request_id, []).append(
                {"attempt": attempt.attempt, "forged": forged, "status": status, "sent_at": sent_at}
            )
            if forged is not None:
                self._counts["forged"] += 1
                refused = status is not None and 400 <= status < 500
                self._counts["forged_refused" if refused else "forged_accepted"] += 1
        return status

    def _signed(self, attempt: _Attempt, kind: str | None) -> tuple[bytes, dict[str, str]]:
        """The body and headers of one try: genuine, or forged as ``kind`` says."""
        request_id = str(attempt.payload.get("request_id", ""))
        body = json.dumps(attempt.payload, separators=(",", ":")).encode()
        now = int(time.time())
        if kind == "stale_timestamp":
            return body, self.signer.headers(request_id, body, timestamp=now - STALE_SECONDS)
        if kind == "wrong_key":
            stranger = Ed25519PrivateKey.generate()
            return body, self.signer.headers(request_id, body, timestamp=now, key=stranger)
        headers = self.signer.headers(request_id, body, timestamp=now)
        if kind == "bad_signature":
            signature = bytearray(bytes.fromhex(headers[SIGNATURE]))
            signature[0] ^= 0xFF
            headers[SIGNATURE] = signature.hex()
        elif kind == "other_payload":  # this job's signed headers, another job's outcome
            with self._lock:
                other = self._last_body
            forged = (
                other[1]
                if other is not None and other[0] != request_id
                else {**attempt.payload, "payload": {"images": [], "forged": True}}
            )
            body = json.dumps({**forged, "request_id": request_id}).encode()
        return body, headers
