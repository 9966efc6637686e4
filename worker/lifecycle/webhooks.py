"""Tell a client's ``webhook_url`` that its generation ended, in fal's webhook shape, signed.

Delivery is state, like everything else: a terminal row with a ``webhook_url``, neither
``webhook_delivered_at`` nor ``webhook_stopped_at``, is due. The beat tick
``generation.deliver_webhooks`` travels on a queue of its own (``genqueue.webhooks``), so
deliveries never take a slot a poll needs. Each tick claims what may start now
(``webhook_claim.py``: at most ``webhook_concurrency`` in flight in all and
``webhook_per_destination`` to one receiver), signs each with its tenant's secrets
(``webhook_sign.py``), POSTs them at once under the address policy (``webhook_http.py``), each
bounded by ``webhook_timeout``, and records every attempt in the delivery log and as an event.
Any 2xx is success; a refused destination is ``blocked`` and a 410 ``gone``, both never tried
again; anything else (an error of any kind included) is retried on ``webhook_retry.py``'s
schedule, then abandoned. Receivers dedupe on ``webhook-id``: a worker that dies after the POST
but before the commit delivers again.
"""

import json
import logging
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy.orm import Session

from models.deliveries import Attempt, log_attempt
from models.media_urls import result_for
from models.secretbox import SecretUnreadable
from models.state import record_event, update_where
from models.status import TERMINAL, GenerationStatus
from models.tables import GENERATIONS, Generation
from models.vocabulary import EventKind
from models.webhook_secrets import signing_secrets
from worker.context import WorkerContext
from worker.lifecycle.webhook_claim import Due, Payload, claim
from worker.lifecycle.webhook_http import Answer, Blocked, Message, Sender, Unsigned, describe
from worker.lifecycle.webhook_retry import GONE, retry_delay
from worker.lifecycle.webhook_sign import signed_headers

log = logging.getLogger(__name__)


EVENT_HEADER = {"X-Genqueue-Event": "generation.ended"}
EVENT_KINDS = {
    "delivered": EventKind.WEBHOOK_DELIVERED,
    "failed": EventKind.WEBHOOK_FAILED,
    "abandoned": EventKind.WEBHOOK_ABANDONED,
    "blocked": EventKind.WEBHOOK_BLOCKED,
    "gone": EventKind.WEBHOOK_GONE,
}


def deliver_webhooks(ctx: WorkerContext, send: Sender) -> dict[str, int]:
    """The body of ``generation.deliver_webhooks``: how many deliveries ended each way."""
    due = claim(ctx, payload_builder(ctx))
    if not due:
        return {}
    keys = _signing_secrets(ctx, {d.tenant_id for d in due})
    with ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="webhook") as pool:
        outcomes = list(pool.map(lambda d: _deliver(ctx, send, d, keys.get(d.tenant_id)), due))
    return dict(Counter(outcomes))


def _signing_secrets(ctx: WorkerContext, tenants: set[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    """Each tenant's signing secrets; none (their deliveries fail and are retried) when they
    cannot be read: a message is never sent unsigned."""
    if ctx.secret_box is None:
        log.error("webhooks: no secret box configured, nothing can be signed")
        return {}
    try:
        box = ctx.secret_box()
        with ctx.sessions.begin() as session:
            return signing_secrets(session, box, tenants, now=ctx.clock())
    except (SecretUnreadable, OSError) as exc:  # a key that does not open, a key file unreadable
        log.error("webhooks: signing secrets unavailable: %s", exc)
        return {}


def payload_builder(ctx: WorkerContext) -> Payload:
    """Builds each delivery's payload, its stored files' URLs genqueue's own (when the worker
    can make them: ``ctx.media_urls``), as ``GET {response_url}`` hands them out."""

    def build(session: Session, gen: Generation) -> dict[str, Any]:
        return payload_for(gen, result_for(session, gen, ctx.media_urls, keep_upstream=False))

    return build


def payload_for(gen: Generation, result: dict[str, Any] | None) -> dict[str, Any]:
    """fal's webhook shape with genqueue's ``generation`` beside it; ``result`` is the output
    as handed out."""
    ok = gen.status == GenerationStatus.COMPLETED.value
    error = gen.error or {}
    return {
        "request_id": str(gen.id),
        "gateway_request_id": str(gen.id),
        "status": "OK" if ok else "ERROR",
        "payload": result if ok else error.get("body"),
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


def body_of(payload: dict[str, Any]) -> bytes:
    """The bytes sent (and signed): compact JSON."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _deliver(ctx: WorkerContext, send: Sender, due: Due, secrets: list[str] | None) -> str:
    attempt = due.attempts + 1
    answer: Answer | None = None
    problem: str | None
    started, clock = ctx.clock(), time.monotonic()
    try:
        if not secrets:
            raise Unsigned
        body = body_of(due.payload)
        signed = signed_headers(secrets, generation_id=due.id, body=body, now=started)
        answer = send(Message(due.url, body, {**EVENT_HEADER, **signed}))
    except Exception as exc:  # whatever the URL or the receiver did: recorded, never raised
        problem, blocked = describe(exc), isinstance(exc, Blocked)
        if not isinstance(exc, Blocked | httpx.HTTPError | Unsigned):
            log.exception("webhook for %s: attempt %d could not be made", due.id, attempt)
    else:
        ok = 200 <= answer.status < 300
        problem, blocked = (None if ok else f"HTTP {answer.status}"), False
    took = round((time.monotonic() - clock) * 1000)
    outcome, values = _outcome(ctx, attempt, answer, problem, blocked=blocked)
    tried = Attempt(
        generation_id=due.id,
        at=started,
        attempt=attempt,
        url=due.url,
        outcome=outcome,
        http_status=answer.status if answer else None,
        error=problem,
        duration_ms=took,
        response_excerpt=answer.excerpt if answer else None,
    )
    _record(ctx, due, tried, values)
    if problem:
        log.warning("webhook for %s: attempt %d %s: %s", due.id, attempt, outcome, problem)
    return outcome


def _outcome(
    ctx: WorkerContext, attempt: int, answer: Answer | None, problem: str | None, *, blocked: bool
) -> tuple[str, dict[str, Any]]:
    """An attempt's outcome (delivered, blocked, gone, abandoned, failed) and what it changes."""
    now = ctx.clock()
    values: dict[str, Any] = {"webhook_attempts": attempt, "webhook_lease_until": None}
    if problem is None:
        return "delivered", {**values, "webhook_delivered_at": now}
    if blocked:
        return "blocked", {**values, "webhook_stopped_at": now}
    if answer is not None and answer.status == GONE:
        return "gone", {**values, "webhook_stopped_at": now}
    retry_after = answer.retry_after if answer else None
    delay = retry_delay(attempt, ctx.limits.webhook_retry_schedule, retry_after=retry_after)
    if delay is None:
        return "abandoned", {**values, "webhook_stopped_at": now}
    return "failed", {**values, "webhook_next_at": now + timedelta(seconds=delay)}


def _record(ctx: WorkerContext, due: Due, tried: Attempt, values: dict[str, Any]) -> None:
    """The attempt in the delivery log, as an event, and its effect on the row (the latter
    only while the claim is ours: a lease that ran out was claimed again)."""
    now = ctx.clock()
    with ctx.sessions.begin() as session:
        update_where(
            session,
            due.id,
            now=now,
            statuses=TERMINAL,
            values=values,
            where=[
                GENERATIONS.c.webhook_delivered_at.is_(None),
                GENERATIONS.c.webhook_lease_until == due.lease_until,
            ],
        )
        log_attempt(session, tried)
        detail = {"attempt": tried.attempt, "http_status": tried.http_status, "error": tried.error}
        record_event(session, due.id, kind=EVENT_KINDS[tried.outcome], now=now, detail=detail)
