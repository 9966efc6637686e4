"""Tell a client's ``webhook_url`` that its generation ended, in fal's webhook shape.

Delivery is state, like everything else: a terminal row with a ``webhook_url`` and no
``webhook_delivered_at`` is due. The beat tick ``generation.deliver_webhooks`` travels on a
queue of its own (``genqueue.webhooks``), so deliveries never take a slot a poll needs. Each
tick claims what may start now (``webhook_claim.py``: at most ``webhook_concurrency`` in flight
in all and ``webhook_per_destination`` to one receiver), POSTs them at once, each bounded by
``webhook_timeout``, and records every answer as an event. Any 2xx is success; anything else is
retried with doubling delays (10 s … ~43 min, ten tries over about 85 minutes, as fal does),
then abandoned with an event. Receivers must dedupe on ``request_id``: a worker that dies after
the POST but before the commit delivers again.
"""

import logging
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx

from models.state import record_event, update_where
from models.status import TERMINAL, GenerationStatus
from models.tables import GENERATIONS, Generation
from models.vocabulary import EventKind
from worker.context import WorkerContext
from worker.lifecycle.webhook_claim import MAX_ATTEMPTS, Due, claim

log = logging.getLogger(__name__)
FIRST_DELAY = 10.0

Sender = Callable[[str, dict[str, Any]], int]
"""POST a JSON payload to a URL, return the HTTP status (raise ``httpx.HTTPError`` on failure)."""


def http_client(timeout: float, max_connections: int) -> httpx.Client:
    """The deliveries' own HTTP client: every phase (connect, send, answer) within ``timeout``,
    no redirects followed."""
    return httpx.Client(
        timeout=httpx.Timeout(timeout),
        follow_redirects=False,
        limits=httpx.Limits(max_connections=max_connections),
        headers={"User-Agent": "genqueue-webhook/0.1"},
    )


def http_sender(client: httpx.Client) -> Sender:
    def send(url: str, payload: dict[str, Any]) -> int:
        # Only the status is wanted: the answer's body is never read (nor waited for).
        with client.stream(
            "POST", url, json=payload, headers={"X-Genqueue-Event": "generation.ended"}
        ) as response:
            return response.status_code

    return send


def deliver_webhooks(ctx: WorkerContext, send: Sender) -> dict[str, int]:
    """The body of ``generation.deliver_webhooks``: how many deliveries ended each way."""
    due = claim(ctx, payload_for)
    if not due:
        return {}
    with ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="webhook") as pool:
        outcomes = list(pool.map(lambda d: _deliver(ctx, send, d), due))
    return dict(Counter(outcomes))


def payload_for(gen: Generation) -> dict[str, Any]:
    ok = gen.status == GenerationStatus.COMPLETED.value
    error = gen.error or {}
    return {
        "request_id": str(gen.id),
        "gateway_request_id": str(gen.id),
        "status": "OK" if ok else "ERROR",
        "payload": gen.result if ok else error.get("body"),
        "error": None if ok else error.get("message") or gen.status,
        "generation": {
            "id": str(gen.id),
            "model": gen.model,
            "status": gen.status,
            "upstream_request_id": gen.upstream_request_id,
            "error_type": error.get("error_type") or error.get("type"),
            "completed_at": gen.completed_at.isoformat() if gen.completed_at else None,
        },
    }


def _deliver(ctx: WorkerContext, send: Sender, due: Due) -> str:
    attempt = due.attempts + 1
    try:
        code: int | None = send(due.url, due.payload)
        problem = None if code is not None and 200 <= code < 300 else f"HTTP {code}"
    except Exception as exc:  # whatever the URL or the receiver did: recorded, retried
        code, problem = None, f"{type(exc).__name__}: {exc}"[:300]
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        if problem is None:
            values: dict[str, Any] = {"webhook_attempts": attempt, "webhook_delivered_at": now}
            kind, outcome = EventKind.WEBHOOK_DELIVERED, "delivered"
        else:
            values = {"webhook_attempts": attempt, "webhook_next_at": _next_try(now, attempt)}
            kind = (
                EventKind.WEBHOOK_FAILED if attempt < MAX_ATTEMPTS else EventKind.WEBHOOK_ABANDONED
            )
            outcome = "failed" if attempt < MAX_ATTEMPTS else "abandoned"
        # Counted only while the claim is ours (a lease that ran out was claimed again).
        update_where(
            session,
            due.id,
            now=now,
            statuses=TERMINAL,
            values={**values, "webhook_lease_until": None},
            where=[
                GENERATIONS.c.webhook_delivered_at.is_(None),
                GENERATIONS.c.webhook_lease_until == due.lease_until,
            ],
        )
        record_event(
            session,
            due.id,
            kind=kind,
            now=now,
            detail={"attempt": attempt, "http_status": code, "error": problem},
        )
    if problem:
        log.warning("webhook for %s: attempt %d failed: %s", due.id, attempt, problem)
    return outcome


def _next_try(now: datetime, attempt: int) -> datetime:
    return now + timedelta(seconds=FIRST_DELAY * 2 ** (attempt - 1))
