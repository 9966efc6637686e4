"""Webhook delivery (``?fal_webhook=``): a daemon thread that advances the queue and POSTs.

The queue itself advances lazily, so while jobs with a webhook are unfinished this thread polls
the simulator every ``poll_interval`` seconds. Payloads follow UPSTREAM.md §11; they are not
signed (the simulator has no fal key pair).
"""

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

logger = logging.getLogger(__name__)

Delivery = tuple[str, dict[str, Any], int]
TakeDue = Callable[[], tuple[list[Delivery], int]]


class WebhookSender:
    """Delivers due webhooks in the background; never blocks a request."""

    def __init__(
        self,
        take_due: TakeDue,
        *,
        poll_interval: float = 0.05,
        timeout: float = 10.0,
        attempts: int = 3,
    ) -> None:
        self._take_due = take_due
        self._poll_interval = poll_interval
        self._timeout = timeout
        self._attempts = attempts
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

    def _run(self) -> None:
        with httpx.Client(timeout=self._timeout) as client:
            while not self._stop.is_set():
                self._wake.clear()
                due, pending = self._take_due()
                for url, payload, copies in due:
                    for _ in range(copies):
                        self._deliver(client, url, payload)
                if pending:
                    self._stop.wait(self._poll_interval)
                elif not due:
                    self._wake.wait()

    def _deliver(self, client: httpx.Client, url: str, payload: dict[str, Any]) -> None:
        headers = {
            "X-Fal-Webhook-Request-Id": str(payload.get("request_id", "")),
            "X-Fal-Webhook-User-Id": "simulator",
            "X-Fal-Webhook-Timestamp": str(int(time.time())),
        }
        for attempt in range(1, self._attempts + 1):
            if self._stop.is_set():
                return
            try:
                response = client.post(url, json=payload, headers=headers)
            except httpx.HTTPError as exc:
                logger.warning("webhook %s attempt %d failed: %s", url, attempt, exc)
            else:
                if response.is_success:
                    logger.info("webhook %s delivered (%d)", url, response.status_code)
                    return
                logger.warning(
                    "webhook %s attempt %d answered %d", url, attempt, response.status_code
                )
            self._stop.wait(0.5 * 2 ** (attempt - 1))
