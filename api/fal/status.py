"""The fal status body of one generation, once (polling) or as server-sent events (stream)."""

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.fal.answers import COMPLETED, fal_urls, log_entries, status_body
from api.lookups import events_of, queue_position
from api.state import AppState
from models.tables import Generation

log = logging.getLogger(__name__)


def current_status(
    session: Session, gen: Generation, base: str, *, with_logs: bool
) -> dict[str, Any]:
    logs = None
    if with_logs:
        logs = log_entries(events_of(session, gen.id))
    return status_body(
        gen,
        fal_urls(base, gen.model, str(gen.id)),
        queue_position=queue_position(session, gen),
        logs=logs,
    )


def _look(
    state: AppState, tenant_id: uuid.UUID, generation_id: uuid.UUID, base: str, with_logs: bool
) -> dict[str, Any] | None:
    with state.sessions() as session:
        gen = session.scalar(
            select(Generation).where(
                Generation.id == generation_id, Generation.tenant_id == tenant_id
            )
        )
        return None if gen is None else current_status(session, gen, base, with_logs=with_logs)


async def status_events(
    state: AppState, tenant_id: uuid.UUID, generation_id: uuid.UUID, base: str, with_logs: bool
) -> AsyncIterator[str]:
    """``data: <status JSON>`` whenever the status changes, ``: ping`` while it does not, and
    the end of the stream after COMPLETED. A database hiccup is waited out, not reported."""
    settings = state.settings
    last_text: str | None = None
    last_write = time.monotonic()
    while True:
        try:
            body = await run_in_threadpool(_look, state, tenant_id, generation_id, base, with_logs)
        except SQLAlchemyError as exc:
            log.warning("status stream: database error, retrying: %s", type(exc).__name__)
            body = json.loads(last_text) if last_text else {"status": None}
        if body is None:
            return
        text = json.dumps(body)
        if text != last_text and body.get("status"):
            yield f"data: {text}\n\n"
            last_text, last_write = text, time.monotonic()
        elif time.monotonic() - last_write >= settings.stream_ping_interval:
            yield ": ping\n\n"
            last_write = time.monotonic()
        if body.get("status") == COMPLETED:
            return
        await anyio.sleep(settings.stream_poll_interval)
