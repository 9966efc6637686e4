"""RabbitMQ as the broker, end to end: the API publishes, the worker and beat consume, on a
virtual host of this run's own; the queues are quorum queues, declared alike by both sides."""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from amqp.exceptions import PreconditionFailed
from kombu.connection import Connection
from kombu.entity import Queue

from migrations.runner import upgrade
from models import broker
from models.db import make_engine, make_session_factory
from models.keys import create_key
from tests.support.jobs import Jobs, assert_invariants
from tests.support.rabbitmq import publisher_app, rabbitmq_vhost
from tests.support.services import postgres_database
from tests.support.stack import Stack, running_stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rabbit_stack() -> Iterator[Stack]:
    """Its own database too: another stack's worker would poll these rows at its simulator."""
    with rabbitmq_vhost() as broker_url, postgres_database() as db_url:
        upgrade(db_url)
        with running_stack(
            database_url=db_url, broker_url=broker_url, extra_env={}, with_api=True
        ) as stack:
            yield stack


def _queue_type(broker_url: str, name: str) -> str:
    """What the broker answers a declaration of ``name`` as a classic queue: it refuses one
    that exists as a quorum queue, naming the type."""
    with Connection(broker_url) as conn:  # type: ignore[no-untyped-call]
        try:
            Queue(name).bind(conn.channel()).declare()  # type: ignore[no-untyped-call]
        except PreconditionFailed as exc:
            return "quorum" if "'quorum'" in str(exc) else str(exc)
    return "classic"


def test_jobs_created_through_the_api_complete_on_rabbitmq(rabbit_stack: Stack) -> None:
    engine = make_engine(rabbit_stack.database_url)
    sessions = make_session_factory(engine)
    celery = publisher_app("genqueue-rabbit-tests", rabbit_stack.broker_url)
    try:
        jobs = Jobs(sessions, celery, rabbit_stack)
        with sessions.begin() as session:
            _, key = create_key(session, name=f"rabbit-{uuid.uuid4().hex[:6]}")
        api = httpx.Client(
            base_url=rabbit_stack.api_url, headers={"Authorization": f"Key {key}"}, timeout=10
        )
        assert api.get("/readyz").status_code == 200  # it pinged RabbitMQ
        ids = []
        for i in range(6):
            response = api.post(
                "/v1/generations",
                json={
                    "model": "fal-ai/flux-pro/kontext/text-to-image",
                    "input": {"prompt": f"rabbit {i} [{jobs.marker}]"},
                },
            )
            assert response.status_code == 201, response.text
            ids.append(uuid.UUID(response.json()["id"]))
        gens = assert_invariants(jobs, ids, timeout=90)
        assert [g.status for g in gens] == ["completed"] * len(ids)
        # Published by the API and consumed by the workers, without a prior publish from here:
        # both sides declared the same quorum queues (a mismatch is refused by the broker).
        types = {n: _queue_type(rabbit_stack.broker_url, n) for n in broker.QUEUE_NAMES}
        assert types == dict.fromkeys(broker.QUEUE_NAMES, "quorum")
        api.close()
    finally:
        celery.close()
        engine.dispose()
