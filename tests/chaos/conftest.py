"""The fault suite's own stack: a PostgreSQL cluster and a broker (a redis-server, or a RabbitMQ
node) that the tests may stop, restart, flush or wipe, plus the API, Flower, a Celery worker,
beat and the simulator. A module picks the broker with ``parametrize("chaos", [...],
indirect=True, scope="module")``; Redis by default."""

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis
from celery import Celery

from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from models.keys import create_key
from tests.support.jobs import Jobs
from tests.support.rabbitmq import RabbitMQServer, publisher_app
from tests.support.services import PostgresServer, RedisServer
from tests.support.stack import Stack, running_stack

SIM_DEFAULTS: dict[str, Any] = {
    "run_time": 1.0,
    "capacity": None,
    "honor_cancel": True,
    "validate": "submit",
    "result_ttl": 3600.0,
}


BrokerServer = RedisServer | RabbitMQServer


def broker_server(kind: str) -> BrokerServer:
    return RabbitMQServer() if kind == "rabbitmq" else RedisServer()


class ChaosStack:
    def __init__(self, stack: Stack, pg: PostgresServer, broker: BrokerServer) -> None:
        self.stack, self.pg, self.broker = stack, pg, broker

    def broker_crashes(self) -> None:
        """SIGKILL to the broker, then start it again on the same data. Redis runs without
        persistence (so it comes back empty); RabbitMQ's quorum queues keep their messages."""
        self.broker.kill()
        self.broker.start()

    def broker_loses_everything(self) -> None:
        """The broker comes back with no queue and no message: Redis flushed and restarted,
        RabbitMQ killed and started on a wiped data directory."""
        if isinstance(self.broker, RedisServer):
            redis.Redis.from_url(self.broker.url).flushall()
            self.broker.kill()
        else:
            self.broker.kill()
            self.broker.wipe()
        self.broker.start()


@pytest.fixture(scope="module")
def chaos(request: pytest.FixtureRequest) -> Iterator[ChaosStack]:
    pg, broker = PostgresServer(), broker_server(getattr(request, "param", "redis"))
    try:  # whatever started before a failure is stopped too
        pg.start()
        broker.start()
        name = f"gq_chaos_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = pg.admin_url.rsplit("/", 1)[0] + f"/{name}"
        upgrade(url)
        with running_stack(
            database_url=url,
            broker_url=broker.url,
            extra_env={},
            with_api=True,
            with_flower=True,
            supervise=True,
        ) as stack:
            yield ChaosStack(stack, pg, broker)
    finally:
        broker.close()
        pg.close()


class ApiJobs(Jobs):
    """Jobs submitted through the HTTP API, as a client would."""

    def __init__(self, chaos: ChaosStack, celery: Celery) -> None:
        stack = chaos.stack
        self.engine = make_engine(stack.database_url)
        sessions = make_session_factory(self.engine)
        super().__init__(sessions, celery, stack)
        with sessions.begin() as session:
            _, self.api_key = create_key(session, name=f"chaos-{self.marker}")
        self.api = httpx.Client(
            base_url=stack.api_url, timeout=10, headers={"Authorization": f"Bearer {self.api_key}"}
        )

    def close(self) -> None:
        self.api.close()
        self.engine.dispose()

    def post(self, prompt: str, **input: Any) -> httpx.Response:
        return self.api.post(
            "/v1/generations",
            json={
                "model": "fal-ai/flux-pro/kontext/text-to-image",
                "input": {"prompt": f"{prompt} [{self.marker}]", **input},
            },
        )

    def submit(self, prompt: str, **input: Any) -> uuid.UUID:
        response = self.post(prompt, **input)
        assert response.status_code == 201, response.text
        return uuid.UUID(response.json()["id"])


@pytest.fixture
def jobs(chaos: ChaosStack) -> Iterator[ApiJobs]:
    sim = chaos.stack.sim
    sim.clear_faults()
    sim.configure(**SIM_DEFAULTS)
    celery = publisher_app("genqueue-chaos", chaos.broker.url)
    jobs = ApiJobs(chaos, celery)
    try:
        yield jobs
    finally:
        jobs.close()
        sim.clear_faults()
        sim.configure(**SIM_DEFAULTS)
        celery.close()
