"""PostgreSQL and Redis for a benchmark run: a database and a Redis database number of our own.

Both servers must already answer (the machine's own, or ``GENQUEUE_BENCH_PG`` /
``GENQUEUE_BENCH_REDIS``). The Redis number is claimed with the same ``SET NX`` protocol the
test suite uses, so a benchmark and a test run never share (or flush) one database.
"""

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import redis

from migrations.runner import upgrade

PG_ADMIN_URL = os.environ.get(
    "GENQUEUE_BENCH_PG",
    os.environ.get("GENQUEUE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
REDIS_URL = os.environ.get(
    "GENQUEUE_BENCH_REDIS", os.environ.get("GENQUEUE_TEST_REDIS", "redis://127.0.0.1:6379")
)
CLAIM_KEY = "genqueue-test:claim"  # shared with tests/support/services.py on purpose


@contextmanager
def private_database(admin_url: str = PG_ADMIN_URL) -> Iterator[str]:
    """A fresh, migrated database, dropped afterwards."""
    name = f"gq_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{admin_url.rsplit('/', 1)[0]}/{name}"
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def private_redis(base_url: str = REDIS_URL) -> Iterator[str]:
    """A Redis database number of our own (15 down to 1), flushed before and after."""
    marker = f"genqueue-bench:{uuid.uuid4()}"
    for db in range(15, 0, -1):
        conn = redis.Redis.from_url(f"{base_url}/{db}", socket_connect_timeout=5)
        if conn.set(CLAIM_KEY, marker, nx=True, ex=6 * 3600):
            try:
                conn.flushdb()
                conn.set(CLAIM_KEY, marker, ex=6 * 3600)
                yield f"{base_url}/{db}"
            finally:
                conn.flushdb()
                conn.close()
            return
        conn.close()
    raise RuntimeError("every Redis database 1-15 is claimed by another run")


def flush_broker(broker_url: str) -> None:
    """Drop every message and key except the claim (between benchmark phases)."""
    conn = redis.Redis.from_url(broker_url)
    try:
        marker = conn.get(CLAIM_KEY)
        conn.flushdb()
        if marker is not None:
            conn.set(CLAIM_KEY, marker, ex=6 * 3600)
    finally:
        conn.close()


def postgres_version(database_url: str) -> str:
    with psycopg.connect(database_url, connect_timeout=5) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def redis_version(broker_url: str) -> str:
    conn = redis.Redis.from_url(broker_url)
    try:
        info = conn.info("server")
    finally:
        conn.close()
    return str(info.get("redis_version", "?"))
