"""Completed jobs whose client webhook is due, and a worker context to deliver them (no
upstream involved): for the delivery tests."""

import socket
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from models.keys import create_key
from models.secretbox import SecretBox
from models.tables import Generation, GenerationEvent
from tests.support.generations import create_generation
from worker.context import Limits, WorkerContext
from worker.upstream import UpstreamClient

MODEL = "fal-ai/flux-pro/kontext/text-to-image"
BOX = SecretBox("tests-master-secret-" + "x" * 32)
"""The master secret the delivery tests' contexts seal webhook secrets with."""


def webhook_ctx(sessions: sessionmaker[Session], limits: Limits | None = None) -> WorkerContext:
    return WorkerContext(
        sessions=sessions,
        client=UpstreamClient(base_url="http://127.0.0.1:9", key=None),
        publish=lambda name, args: None,
        limits=limits or Limits(),
        secret_box=lambda: BOX,
    )


def ended_jobs(
    ctx: WorkerContext, url: str, count: int = 1, *, tenant_id: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """``count`` completed jobs of a new tenant (or ``tenant_id``) whose webhook to ``url`` is
    due."""
    now = datetime.now(UTC)
    with ctx.sessions.begin() as session:
        if tenant_id is None:
            tenant_id = create_key(session, name=f"hooks-{uuid.uuid4().hex[:8]}")[0].tenant_id
        ids = [
            create_generation(
                session,
                tenant_id=tenant_id,
                model=MODEL,
                input={"prompt": f"hooked {n}"},
                now=now,
                deadline_seconds=600,
                submit_grace_seconds=5,
                webhook_url=url,
            ).id
            for n in range(count)
        ]
        session.execute(
            update(Generation)
            .where(Generation.id.in_(ids))
            .values(status="completed", completed_at=now, result={"images": []})
        )
    return ids


def tenant_of(ctx: WorkerContext, gen_id: uuid.UUID) -> uuid.UUID:
    with ctx.sessions() as session:
        tenant_id = session.scalar(select(Generation.tenant_id).where(Generation.id == gen_id))
        assert tenant_id is not None
        return tenant_id


def webhook_events(ctx: WorkerContext, gen_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    with ctx.sessions() as session:
        rows = session.execute(
            select(GenerationEvent.kind, GenerationEvent.detail)
            .where(GenerationEvent.generation_id == gen_id, GenerationEvent.kind.like("webhook%"))
            .order_by(GenerationEvent.id)
        ).all()
    return [(kind, detail or {}) for kind, detail in rows]


class FakeDns:
    """Stands in for ``getaddrinfo``: each name answers the addresses it is given, and every
    lookup is counted (no name here exists in real DNS)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.lookups: list[str] = []

    def __call__(self, host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        self.lookups.append(host)
        if host not in self.names:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answers: list[Any] = []
        for address in self.names[host]:
            if ":" in address:
                answers.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, int(port), 0, 0))
                )
            else:
                answers.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port))))
        return answers
