"""Creating a generation from either surface: idempotency, then the intake's commit and publish."""

import hashlib
import json
import re
import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import Header
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.body import storable_text, unstorable_text
from api.errors import ApiError, invalid
from api.intake import Accepted
from api.lookups import queue_position
from api.state import AppState
from models.destinations import MAX_URL_LENGTH, AddressPolicy, RefusedDestination
from models.generations import NewGeneration
from models.pricing import estimate
from models.priority import Priority
from models.tables import Generation
from models.usage import month_spend

MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"
"""1-255 printable ASCII characters, neither beginning nor ending with a space (HTTP would drop
it). The OpenAPI document declares this pattern; :func:`check_idempotency_key` enforces it."""
_IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN.replace("$", r"\Z"))
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=IDEMPOTENCY_HEADER,
        description="same key and body → the same generation; 1-255 printable ASCII characters",
        json_schema_extra={"pattern": IDEMPOTENCY_KEY_PATTERN},
    ),
]
PRIORITY_HEADER = "X-Fal-Queue-Priority"
BUDGET_EXCEEDED = "budget_exceeded"


def check_priority_header(value: str | None) -> Priority:
    """fal's ``X-Fal-Queue-Priority`` (``normal`` or ``low``; genqueue also takes ``high``)."""
    if value is None:
        return Priority.NORMAL
    try:
        return Priority(value.strip().lower())
    except ValueError:
        raise invalid(
            ["header", PRIORITY_HEADER],
            f"{PRIORITY_HEADER} must be one of: high, normal, low",
            type="enum",
            input=value,
            ctx={"expected": [p.value for p in Priority]},
        ) from None


def request_hash(*, model: str, input: dict[str, Any], webhook_url: str | None) -> str:
    """SHA-256 of the canonical JSON of what was asked (validated input, defaults applied), so
    ``{"safety_tolerance": 2}`` and ``{"safety_tolerance": "2"}`` are the same request."""
    canonical = json.dumps(
        {"model": model, "input": input, "webhook_url": webhook_url},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def check_idempotency_key(value: str | None) -> str | None:
    if value is None:
        return None
    if _IDEMPOTENCY_KEY.match(value) is None:
        raise invalid(
            ["header", IDEMPOTENCY_HEADER],
            f"{IDEMPOTENCY_HEADER} must be 1-{MAX_IDEMPOTENCY_KEY} printable ASCII characters, "
            "not beginning or ending with a space",
            type="value_error",
            input=value[:300],
        )
    return value


WEBHOOK_URL_PATTERN = "^https?://"
"""What the OpenAPI document says of a webhook URL (:func:`check_webhook_url` checks more)."""


def check_webhook_url(url: str | None, loc: list[str | int], policy: AddressPolicy) -> str | None:
    """A webhook URL is storable text the address policy accepts (``models/destinations.py``:
    parses, http(s), no userinfo, at most 2048 characters, no refused literal address); ``loc``
    names where it came from. A name is resolved at delivery, not here."""
    if url is None:
        return None
    if not storable_text(url):
        raise unstorable_text(loc)
    if not url.startswith(("http://", "https://")):
        raise invalid(loc, "URL scheme should be 'http' or 'https'", type="url_scheme", input=url)
    try:
        policy.check(url)
    except RefusedDestination as exc:
        shown = url if len(url) <= MAX_URL_LENGTH else url[:100] + "…"
        raise invalid(
            loc, f"Webhook URL refused: {exc.reason}", type="webhook_url", input=shown
        ) from None
    return url


async def submit(
    state: AppState,
    caller: Caller,
    *,
    model: str,
    input: dict[str, Any],
    webhook_url: str | None,
    idempotency_key: str | None,
    position: bool = False,
    priority: Priority = Priority.NORMAL,
    copy_awaited: bool = False,
) -> Accepted:
    """Commit a new generation through the intake (which publishes it), or find the one that
    holds ``idempotency_key``: the same body replays it (``inserted.row`` is None), another
    body is a 409. ``position``: say how many generations wait ahead of it. ``copy_awaited``:
    the caller waits for the answer, copied files included (a sync ``/run``, a ``/v1`` create
    with ``await_media``)."""
    key = check_idempotency_key(idempotency_key)
    await state.rate_limits.check(
        caller.tenant_id, caller.tenant, rate=caller.rate_limit, burst=caller.burst
    )
    price, cost = estimate(model, input, state.settings.model_prices, state.catalogue)
    if caller.monthly_budget is not None and cost is not None:
        await run_in_threadpool(_within_budget, state, caller, cost)
    digest = request_hash(model=model, input=input, webhook_url=webhook_url)
    default_deadline = state.settings.job_deadline
    deadline = state.catalogue.deadline_seconds(model, default_deadline)
    new = NewGeneration(
        caller.tenant_id,
        model,
        input,
        key,
        digest,
        webhook_url,
        priority,
        price,
        cost,
        deadline_seconds=deadline if deadline != default_deadline else None,
        copy_awaited=copy_awaited,
    )
    # The intake counts older waiting rows for the whole group at once; under fair scheduling
    # the position is the fair order's instead, looked up for this row once it is stored.
    fair = state.settings.max_in_flight > 0
    accepted = await state.intake.accept(new, position=position and not fair)
    inserted = accepted.inserted
    if inserted.created and not (position and fair):
        return accepted
    if not inserted.created and inserted.existing_hash != digest:
        raise ApiError(
            409,
            f"{IDEMPOTENCY_HEADER} '{key}' was already used with a different request body "
            f"(generation {inserted.id})",
        )
    if not position:
        return accepted
    ahead = await run_in_threadpool(_position, state, inserted.id)
    return replace(accepted, queue_position=ahead)


def _within_budget(state: AppState, caller: Caller, cost: float) -> None:
    """402 ``budget_exceeded`` when this job's estimate would take the tenant's month-to-date
    spend past its ``monthly_budget``. Checked before the insert, not with it: creates of one
    tenant at the same moment may pass together and overshoot by their own estimates."""
    budget = caller.monthly_budget
    assert budget is not None
    with state.sessions() as session:
        spent = month_spend(session, caller.tenant_id, now=state.clock())
    if spent + cost > budget + 1e-9:
        raise ApiError(
            402,
            BUDGET_EXCEEDED,
            message=f"this generation's estimated cost of {cost:.4f} USD would take tenant "
            f"'{caller.tenant}' past its monthly budget of {budget:.2f} USD "
            f"({spent:.4f} USD spent or committed this month)",
            budget=budget,
            spent=round(spent, 6),
            estimated_cost=cost,
        )


def key_holder(session: Session, generation_id: uuid.UUID) -> Generation:
    """The generation holding a replayed idempotency key."""
    gen = session.get(Generation, generation_id)
    if gen is None:  # generations are never deleted
        raise RuntimeError(f"generation {generation_id} holds a key but does not exist")
    return gen


def _position(state: AppState, generation_id: uuid.UUID) -> int:
    with state.sessions() as session:
        gen = key_holder(session, generation_id)
        return queue_position(session, gen, fair=state.settings.max_in_flight > 0)
