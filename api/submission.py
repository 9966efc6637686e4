"""Creating a generation from either surface: idempotency, then the intake's commit and publish."""

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool

from api.auth import Caller
from api.body import storable_text, unstorable_text
from api.errors import ApiError, invalid
from api.lookups import events_of, queue_position
from api.schemas import GenerationDetail
from api.state import AppState
from api.views import new_detail, to_detail
from models.generations import NewGeneration
from models.tables import Generation

MAX_IDEMPOTENCY_KEY = 255
IDEMPOTENCY_HEADER = "Idempotency-Key"


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
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY or not value.isprintable():
        raise invalid(
            ["header", IDEMPOTENCY_HEADER],
            f"{IDEMPOTENCY_HEADER} must be 1-{MAX_IDEMPOTENCY_KEY} printable characters",
            type="value_error",
            input=value,
        )
    return value


def check_webhook_url(url: str | None, loc: list[str | int]) -> str | None:
    """A webhook URL is storable text with an http(s) scheme; ``loc`` names where it came from."""
    if url is None:
        return None
    if not storable_text(url):
        raise unstorable_text(loc)
    if not url.startswith(("http://", "https://")):
        raise invalid(loc, "URL scheme should be 'http' or 'https'", type="url_scheme", input=url)
    return url


@dataclass(frozen=True)
class Submitted:
    """A new generation (or, for a replayed idempotency key, the one that holds the key) as
    the answer shows it: the record with its events so far, and its place in the waiting
    line."""

    detail: GenerationDetail
    queue_position: int | None
    """Only when asked for (``position=True``)."""
    created: bool


async def submit(
    state: AppState,
    caller: Caller,
    *,
    model: str,
    input: dict[str, Any],
    webhook_url: str | None,
    idempotency_key: str | None,
    position: bool = False,
) -> Submitted:
    """Commit a new generation through the intake (which publishes it), or find the one that
    holds ``idempotency_key``: the same body replays it, another body is a 409."""
    key = check_idempotency_key(idempotency_key)
    digest = request_hash(model=model, input=input, webhook_url=webhook_url)
    new = NewGeneration(caller.tenant_id, model, input, key, digest, webhook_url)
    accepted = await state.intake.accept(new, position=position)
    inserted = accepted.inserted
    if inserted.row is not None:
        return Submitted(
            new_detail(inserted.row, accepted.now), accepted.queue_position, created=True
        )
    if inserted.existing_hash != digest:
        raise ApiError(
            409,
            f"{IDEMPOTENCY_HEADER} '{key}' was already used with a different request body "
            f"(generation {inserted.id})",
        )
    return await run_in_threadpool(_replay, state, inserted.id, position)


def _replay(state: AppState, generation_id: uuid.UUID, position: bool) -> Submitted:
    with state.sessions() as session:
        gen = session.get(Generation, generation_id)
        if gen is None:  # generations are never deleted
            raise RuntimeError(f"generation {generation_id} holds a key but does not exist")
        ahead = queue_position(session, gen) if position else None
        return Submitted(to_detail(gen, events_of(session, gen.id)), ahead, created=False)
