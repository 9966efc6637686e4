"""Helpers for the API tests: a publisher that records, keys, rows moved by hand, a live server."""

import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from genqueue.net import free_port, wait_until
from models.keys import create_key
from models.state import record_event
from models.status import GenerationStatus
from models.tables import Generation, Tenant
from models.vocabulary import EventKind

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
EDIT_MODEL = "fal-ai/flux-pro/kontext"


@dataclass
class RecordingPublisher:
    """Stands in for the Celery publisher: remembers (task name, args); can be made to fail."""

    published: list[tuple[str, list[Any]]] = field(default_factory=list)
    fail: bool = False
    ready: bool = True

    def publish(self, task_name: str, args: Sequence[Any]) -> None:
        if self.fail:
            raise ConnectionError("broker is down")
        self.published.append((task_name, list(args)))

    def ping(self) -> bool:
        return self.ready

    def close(self) -> None:
        pass

    def tasks_for(self, generation_id: str) -> list[str]:
        """Task names published for one generation, alone or in a ``submit_many`` group."""
        return [
            name
            for name, args in self.published
            if args == [generation_id] or (isinstance(args[0], list) and generation_id in args[0])
        ]


def new_key(sessions: sessionmaker[Session], tenant: str | None = None) -> str:
    """A fresh key of a fresh tenant (or of ``tenant``); returns the plain key."""
    with sessions.begin() as session:
        name = f"t-{uuid.uuid4().hex[:10]}"
        _, plain = create_key(session, name=name, tenant_name=tenant or name)
        return plain


def stored(sessions: sessionmaker[Session], tenant: str) -> int:
    """How many generations tenant ``tenant`` has in the database."""
    with sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Generation)
                .join(Tenant, Tenant.id == Generation.tenant_id)
                .where(Tenant.name == tenant)
            )
            or 0
        )


def auth(key: str, scheme: str = "Key") -> dict[str, str]:
    return {"Authorization": f"{scheme} {key}"}


def move(
    sessions: sessionmaker[Session],
    generation_id: str,
    status: GenerationStatus,
    *,
    event: EventKind = EventKind.STATUS,
    queue_position: int | None = None,
    **values: Any,
) -> None:
    """Put a row in a state as the worker would (status, columns, an event)."""
    gid = uuid.UUID(generation_id)
    now = datetime.now(UTC)
    with sessions.begin() as session:
        session.execute(
            update(Generation)
            .where(Generation.id == gid)
            .values(status=status.value, updated_at=now, queue_position=queue_position, **values)
        )
        record_event(
            session, gid, kind=event, now=now, status=status, queue_position=queue_position
        )


def complete(sessions: sessionmaker[Session], generation_id: str, result: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    move(
        sessions,
        generation_id,
        GenerationStatus.COMPLETED,
        event=EventKind.COMPLETED,
        result=result,
        completed_at=now,
        run_seconds=1.25,
        upstream_request_id="up-1",
        submitted_at=now - timedelta(seconds=2),
        started_at=now - timedelta(seconds=1),
    )


def fail(
    sessions: sessionmaker[Session],
    generation_id: str,
    kind: str,
    message: str,
    *,
    http_status: int | None = None,
    body: Any = None,
    error_type: str | None = None,
    status: GenerationStatus = GenerationStatus.FAILED,
) -> None:
    error = {
        "type": kind,
        "message": message,
        "http_status": http_status,
        "error_type": error_type,
        "body": body,
    }
    move(
        sessions,
        generation_id,
        status,
        event=EventKind(status.value),
        error=error,
        completed_at=datetime.now(UTC),
    )


@contextmanager
def live_server(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port in a thread; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, 15, what="uvicorn")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
