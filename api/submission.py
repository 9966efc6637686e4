"""Creating a generation from either surface: idempotency, the commit, then the publish."""

import hashlib
import json
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.auth import Caller
from api.deps import AppState
from api.errors import ApiError, ValidationFailed
from api.publisher import publish_after_commit
from models import tasknames
from models.generations import create_generation
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
        raise ValidationFailed(
            [
                {
                    "type": "value_error",
                    "loc": ["header", IDEMPOTENCY_HEADER],
                    "msg": f"{IDEMPOTENCY_HEADER} must be 1-{MAX_IDEMPOTENCY_KEY} printable "
                    "characters",
                    "input": value,
                }
            ]
        )
    return value


def _existing(session: Session, tenant_id: uuid.UUID, key: str) -> Generation | None:
    return session.scalar(
        select(Generation).where(
            Generation.tenant_id == tenant_id, Generation.idempotency_key == key
        )
    )


def _replay(found: Generation, digest: str, key: str) -> Generation:
    if found.request_hash != digest:
        raise ApiError(
            409,
            f"{IDEMPOTENCY_HEADER} '{key}' was already used with a different request body "
            f"(generation {found.id})",
        )
    return found


def submit(
    session: Session,
    state: AppState,
    caller: Caller,
    *,
    model: str,
    input: dict[str, Any],
    webhook_url: str | None,
    idempotency_key: str | None,
) -> tuple[Generation, bool]:
    """Return the generation and whether it is new. A new one is committed, then published."""
    key = check_idempotency_key(idempotency_key)
    digest = request_hash(model=model, input=input, webhook_url=webhook_url)
    if key is not None and (found := _existing(session, caller.tenant_id, key)) is not None:
        return _replay(found, digest, key), False
    settings = state.settings
    try:
        gen = create_generation(
            session,
            tenant_id=caller.tenant_id,
            model=model,
            input=input,
            now=state.clock(),
            deadline_seconds=settings.job_deadline,
            submit_grace_seconds=settings.submit_grace,
            idempotency_key=key,
            request_hash=digest,
            webhook_url=webhook_url,
        )
        session.commit()
    except IntegrityError:
        # Another request with the same key got there first (the insert or the commit fails).
        session.rollback()
        found = _existing(session, caller.tenant_id, key) if key is not None else None
        if found is None or key is None:
            raise
        return _replay(found, digest, key), False
    publish_after_commit(state.publisher, tasknames.SUBMIT, str(gen.id))
    return gen, True
