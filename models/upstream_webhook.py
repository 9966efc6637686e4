"""What a verified fal webhook does to its job (UPSTREAM.md §11): it settles the job exactly as
a poll would, through the same compare-and-set, so a duplicate, a webhook racing a poll, or one
for a job that already ended changes nothing.

- ``OK`` with a payload: ``completed``, the payload is the result.
- ``OK`` with no payload (``null``, or ``payload_error`` set): the job's next poll is due now;
  the poller sees COMPLETED and fetches the result once.
- ``ERROR``: ``failed``, upstream's message, status code and body kept; a cancelled one
  (``client_cancelled``/``client_disconnected``, or 499) is ``cancelled`` (``failed`` /
  ``deadline_exceeded`` when genqueue itself cancelled it at its deadline).

Every webhook for a known job is an ``upstream_webhook`` event, whatever it changed.
"""

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.errors import error_record, is_cancel, upstream_message
from models.media import media_status_for
from models.state import record_event, transition, update_where
from models.status import ACTIVE, TERMINAL, GenerationStatus
from models.tables import Generation
from models.vocabulary import ErrorType, EventKind
from models.webhook_completion import TOO_LATE, complete_together, terminal_values

_STATUS_CODE = re.compile(r"status code:?\s*(\d{3})", re.IGNORECASE)


class WebhookOutcome(StrEnum):
    """What one verified webhook did (the metric label and the answer's ``outcome``)."""

    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    FETCH = "fetch"
    """OK without a payload: the poller fetches the result now."""
    ALREADY_ENDED = "already_ended"
    """The job had ended (a duplicate, or a poll was first): nothing changed."""
    NOT_ACTIVE = "not_active"
    """The job is not upstream under this request id any more (being resubmitted)."""
    UNKNOWN_REQUEST = "unknown_request"
    """No job has this upstream request id."""


@dataclass(frozen=True)
class FalWebhook:
    """The body of a webhook, as fal sends it."""

    request_id: str
    status: str
    """``OK`` or ``ERROR``."""
    payload: Any
    error: str | None
    payload_error: str | None


@dataclass(frozen=True)
class Settled:
    outcome: WebhookOutcome
    created_at: datetime | None
    """The job's creation, when the webhook found one."""

    @property
    def ended(self) -> bool:
        """The webhook moved the job into a terminal status."""
        return self.outcome in TERMINAL_OUTCOMES


def settle_from_webhook(session: Session, hook: FalWebhook, *, now: datetime) -> Settled:
    """Apply ``hook`` in the caller's transaction; what it did."""
    [settled] = settle_group(session, [hook], now=now)
    return settled


def settle_group(session: Session, hooks: Sequence[FalWebhook], *, now: datetime) -> list[Settled]:
    """Apply ``hooks`` in the caller's transaction; what each did, in order.

    The successes go first, together (:func:`models.webhook_completion.complete_together`:
    two statements for the whole group); the rest, and every success that did not win there,
    one by one, each seeing what the ones before it wrote: of two copies of one webhook the
    first completes the job and the second finds it ended. Webhooks for one job that arrive
    in the same group have no order between them (they raced), so a success among them wins.
    """
    first: dict[str, int] = {}
    for index, hook in enumerate(hooks):
        if _completes(hook):
            first.setdefault(hook.request_id, index)
    won = complete_together(session, [hooks[i] for i in first.values()], now=now)
    settled = []
    for index, hook in enumerate(hooks):
        if hook.request_id in won and first[hook.request_id] == index:
            settled.append(Settled(WebhookOutcome.COMPLETED, won[hook.request_id]))
        else:
            settled.append(_settle_alone(session, hook, now=now))
    return settled


def _completes(hook: FalWebhook) -> bool:
    """A success that carries its result."""
    return hook.status == "OK" and hook.payload is not None and not hook.payload_error


def _settle_alone(session: Session, hook: FalWebhook, *, now: datetime) -> Settled:
    row = session.execute(
        select(
            Generation.id,
            Generation.status,
            Generation.submitted_at,
            Generation.cancel_requested_at,
            Generation.deadline_at,
            Generation.created_at,
        )
        .where(Generation.upstream_request_id == hook.request_id)
        .order_by(Generation.created_at.desc())
        .limit(1)
    ).one_or_none()
    if row is None:
        return Settled(WebhookOutcome.UNKNOWN_REQUEST, None)
    gen_id, status = row.id, GenerationStatus(row.status)
    if status in TERMINAL:
        outcome = WebhookOutcome.ALREADY_ENDED
    elif status not in ACTIVE:
        outcome = WebhookOutcome.NOT_ACTIVE
    elif hook.status == "OK" and (hook.payload is None or hook.payload_error):
        outcome = _fetch_now(session, gen_id, now=now)
    elif hook.status == "OK":
        outcome = _complete(session, gen_id, hook, row.submitted_at, row.cancel_requested_at, now)
    else:
        outcome = _fail(session, gen_id, hook, row.cancel_requested_at, row.deadline_at, now)
    detail: dict[str, Any] = {"request_id": hook.request_id, "status": hook.status}
    detail["outcome"] = outcome.value
    if hook.payload_error:
        detail["payload_error"] = hook.payload_error
    record_event(session, gen_id, kind=EventKind.UPSTREAM_WEBHOOK, now=now, detail=detail)
    return Settled(outcome, row.created_at)


TERMINAL_OUTCOMES = frozenset(
    {WebhookOutcome.COMPLETED, WebhookOutcome.FAILED, WebhookOutcome.CANCELLED}
)


def _ended(outcome: WebhookOutcome, won: bool) -> WebhookOutcome:
    return outcome if won else WebhookOutcome.ALREADY_ENDED


def _fetch_now(session: Session, gen_id: uuid.UUID, *, now: datetime) -> WebhookOutcome:
    won = update_where(session, gen_id, now=now, statuses=ACTIVE, values={"next_poll_at": now})
    return WebhookOutcome.FETCH if won else WebhookOutcome.ALREADY_ENDED


def _complete(
    session: Session,
    gen_id: uuid.UUID,
    hook: FalWebhook,
    submitted_at: datetime | None,
    cancel_requested_at: datetime | None,
    now: datetime,
) -> WebhookOutcome:
    detail: dict[str, Any] = {"via": "webhook"}
    if cancel_requested_at:
        detail.update(cancel_requested=True, note=TOO_LATE)
    run_seconds = (now - submitted_at).total_seconds() if submitted_at else None
    won = transition(
        session,
        gen_id,
        to=GenerationStatus.COMPLETED,
        now=now,
        allowed_from=ACTIVE,
        values={
            **terminal_values(now, completed=True),
            "result": hook.payload,
            "media_status": media_status_for(hook.payload),
            "error": None,
            "run_seconds": run_seconds,
        },
        event_kind=EventKind.COMPLETED,
        detail=detail,
    )
    return _ended(WebhookOutcome.COMPLETED, won)


def _fail(
    session: Session,
    gen_id: uuid.UUID,
    hook: FalWebhook,
    cancel_requested_at: datetime | None,
    deadline_at: datetime,
    now: datetime,
) -> WebhookOutcome:
    http_status = _status_code(hook.error)
    error_type = _error_type(hook.payload)
    cancelled = is_cancel(http_status, error_type)
    message = hook.error or upstream_message(hook.payload) or "upstream reported an error"
    kind, to, event, outcome = (
        ErrorType.UPSTREAM_ERROR,
        GenerationStatus.FAILED,
        EventKind.FAILED,
        WebhookOutcome.FAILED,
    )
    if cancelled and not cancel_requested_at and now >= deadline_at:
        kind, event = ErrorType.DEADLINE_EXCEEDED, EventKind.DEADLINE_EXCEEDED
        message = "the job's deadline passed; upstream cancelled it"
    elif cancelled:
        kind, to, event = ErrorType.CANCELLED, GenerationStatus.CANCELLED, EventKind.CANCELLED
        outcome = WebhookOutcome.CANCELLED
    error = error_record(
        kind, message, http_status=http_status, body=hook.payload, error_type=error_type
    )
    won = transition(
        session,
        gen_id,
        to=to,
        now=now,
        allowed_from=ACTIVE,
        values={**terminal_values(now, completed=False), "error": error},
        event_kind=event,
        detail={"via": "webhook", "error_type": kind.value},
    )
    return _ended(outcome, won)


def _status_code(error: str | None) -> int | None:
    """fal's ``error`` reads ``Invalid status code: 422``: the model's HTTP status."""
    found = _STATUS_CODE.search(error or "")
    return int(found.group(1)) if found else None


def _error_type(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("error_type"), str):
        return str(payload["error_type"])
    detail = payload.get("detail")
    if isinstance(detail, list) and detail and isinstance(detail[0], dict):
        found = detail[0].get("type")
        return found if isinstance(found, str) else None
    return None
