"""The fal status body of one generation, once (polling) or as server-sent events (stream)."""

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from starlette.types import Receive, Scope, Send

from api.fal.answers import COMPLETED, fal_urls, log_entries, status_body
from api.fal.watcher import StreamWatcher, Watch
from api.lookups import events_of, queue_position
from models.tables import Generation


def current_status(
    session: Session, gen: Generation, base: str, *, with_logs: bool, fair: bool
) -> dict[str, Any]:
    logs = None
    if with_logs:
        logs = log_entries(events_of(session, gen.id))
    return status_body(
        gen,
        fal_urls(base, gen.model, str(gen.id)),
        queue_position=queue_position(session, gen, fair=fair),
        logs=logs,
    )


def fal_stream_ends(body: dict[str, Any]) -> bool:
    return body.get("status") == COMPLETED


async def status_events(
    watcher: StreamWatcher,
    watch: Watch,
    *,
    ping_interval: float,
    max_seconds: float,
    is_last: Callable[[dict[str, Any]], bool] = fal_stream_ends,
) -> AsyncIterator[str]:
    """``data: <status JSON>`` whenever the status changes, ``: ping`` while it does not; the
    stream ends after the body ``is_last`` (fal's: COMPLETED), when the generation is gone, or
    after ``max_seconds`` (the client reconnects). The bodies come from ``watcher``'s shared
    check."""
    ends = time.monotonic() + max_seconds
    last_text: str | None = None
    last_write = time.monotonic()
    while not watch.gone:
        watcher.ensure_running()
        watch.changed.clear()
        body = watch.body
        if body is not None:
            text = json.dumps(body)
            if text != last_text:
                yield f"data: {text}\n\n"
                last_text, last_write = text, time.monotonic()
            if is_last(body):
                return
        now = time.monotonic()
        if now >= ends:
            return
        wait = min(last_write + ping_interval, ends) - now
        try:
            await asyncio.wait_for(watch.changed.wait(), timeout=max(wait, 0))
        except TimeoutError:
            if time.monotonic() - last_write >= ping_interval:
                yield ": ping\n\n"
                last_write = time.monotonic()


class WatchedStream(StreamingResponse):
    """A stream that gives its watch back when it ends, however it ends (the client may go
    before the first byte)."""

    def __init__(self, content: Any, *, on_end: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.on_end = on_end

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_end()
