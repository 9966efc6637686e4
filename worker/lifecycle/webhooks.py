"""Tell a client's ``webhook_url`` that its generation ended, in fal's webhook shape.

Delivery is state, like everything else: a terminal row with a ``webhook_url`` and no
``webhook_delivered_at`` is due. A beat tick claims due rows (``webhook_next_at`` moves ahead
as a lease), POSTs, and records the answer as an event. Any 2xx is success; anything else is
retried with doubling delays (10 s … ~43 min, ten tries over about 85 minutes, as fal does),
then abandoned with an event. Receivers must dedupe on ``request_id``: a worker that dies after
the POST but before the commit delivers again.
"""

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update

from models.state import record_event, update_where
from models.status import TERMINAL, GenerationStatus
from models.tables import GENERATIONS, Generation
from models.vocabulary import EventKind
from worker.context import WorkerContext

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 10
FIRST_DELAY = 10.0
CLAIM_SECONDS = 60.0
BATCH = 100
TERMINAL_VALUES = [s.value for s in TERMINAL]

Sender = Callable[[str, dict[str, Any]], int]
"""POST a JSON payload to a URL, return the HTTP status (raise ``httpx.HTTPError`` on failure)."""


def http_sender(client: httpx.Client) -> Sender:
    def send(url: str, payload: dict[str, Any]) -> int:
        response = client.post(url, json=payload, headers={"X-Genqueue-Event": "generation.ended"})
        return response.status_code

    return send


@dataclass(frozen=True)
class _Due:
    id: uuid.UUID
    url: str
    attempts: int
    payload: dict[str, Any]


def deliver_webhooks(ctx: WorkerContext, send: Sender) -> dict[str, int]:
    due = _claim(ctx)
    if not due:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(due)), thread_name_prefix="webhook") as pool:
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


def _claim(ctx: WorkerContext) -> list[_Due]:
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        rows = session.scalars(
            select(Generation)
            .where(
                Generation.status.in_(TERMINAL_VALUES),
                Generation.webhook_url.is_not(None),
                Generation.webhook_delivered_at.is_(None),
                Generation.webhook_attempts < MAX_ATTEMPTS,
                or_(Generation.webhook_next_at.is_(None), Generation.webhook_next_at <= now),
            )
            .order_by(Generation.completed_at)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        due = [_Due(g.id, g.webhook_url or "", g.webhook_attempts, payload_for(g)) for g in rows]
        if due:
            session.execute(
                update(Generation)
                .where(Generation.id.in_([d.id for d in due]))
                .values(webhook_next_at=now + timedelta(seconds=CLAIM_SECONDS))
                .execution_options(synchronize_session=False)
            )
    return due


def _deliver(ctx: WorkerContext, send: Sender, due: _Due) -> str:
    attempt = due.attempts + 1
    try:
        code: int | None = send(due.url, due.payload)
        problem = None if code is not None and 200 <= code < 300 else f"HTTP {code}"
    except httpx.HTTPError as exc:
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
        update_where(
            session,
            due.id,
            now=now,
            statuses=TERMINAL,
            values=values,
            where=[GENERATIONS.c.webhook_delivered_at.is_(None)],
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
