"""Per-tenant create rate limits across two API processes sharing one Redis: 429 with
``Retry-After`` and a ``detail``, nothing stored for a refused create, other tenants untouched."""

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import partial

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.ratelimit import storage_uri
from genqueue.net import free_port, wait_until
from models.tenants import set_tenant
from tests.api.support import MODEL, auth, new_key, stored
from tests.support.services import redis_database


@pytest.fixture(scope="module")
def two_apis(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two `genqueue api` processes on one database and one Redis (broker and limits)."""
    tmp = tmp_path_factory.mktemp("two-apis")
    with redis_database() as broker_url:
        env = {
            **os.environ,
            "GENQUEUE_DATABASE_URL": pg_url,
            "GENQUEUE_BROKER_URL": broker_url,
            "GENQUEUE_DATA_DIR": str(tmp),
            "GENQUEUE_API_KEY_CACHE_SECONDS": "0",
        }
        procs, urls = [], []
        try:
            for n in range(2):
                port = free_port()
                argv = [sys.executable, "-m", "genqueue", "api", "--port", str(port)]
                with (tmp / f"api{n}.log").open("wb") as log:
                    procs.append(
                        subprocess.Popen(
                            argv, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True,
                        )
                    )  # fmt: skip
                url = f"http://127.0.0.1:{port}"
                wait_until(partial(_healthy, url), 60, what=f"API {n} to answer")
                urls.append(url)
            yield urls
        finally:
            for proc in procs:
                os.killpg(proc.pid, signal.SIGTERM)
            for proc in procs:
                proc.wait(15)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def limited_key(sessions: sessionmaker[Session], *, rate: float, burst: int) -> tuple[str, str]:
    name = f"rl-{uuid.uuid4().hex[:8]}"
    key = new_key(sessions, tenant=name)
    with sessions.begin() as session:
        set_tenant(session, name, {"rate_limit": rate, "burst": burst})
    return name, key


def create(base: str, key: str, prompt: str) -> httpx.Response:
    body = {"model": MODEL, "input": {"prompt": prompt}}
    return httpx.post(f"{base}/v1/generations", json=body, headers=auth(key), timeout=10)


def test_the_limit_holds_across_two_api_processes(
    two_apis: list[str], pg_sessions: sessionmaker[Session]
) -> None:
    # 5 creates in any 50 s: the test cannot outlast the window.
    name, key = limited_key(pg_sessions, rate=0.1, burst=5)
    answers = [create(two_apis[i % 2], key, f"rl {i}") for i in range(5)]
    assert [a.status_code for a in answers] == [201] * 5
    for i, base in enumerate(two_apis):
        refused = create(base, key, f"refused {i}")
        assert refused.status_code == 429, refused.text
        assert 1 <= int(refused.headers["Retry-After"]) <= 50
        assert refused.json()["detail"].startswith(
            f"Rate limit exceeded: tenant '{name}' may create 5 generations in 50 s (0.1/s)"
        )
    fal = httpx.post(f"{two_apis[0]}/{MODEL}", json={"prompt": "fal"}, headers=auth(key))
    assert fal.status_code == 429
    assert "Retry-After" in fal.headers
    assert stored(pg_sessions, name) == 5  # nothing of the refused ones


def test_one_tenant_over_its_limit_does_not_limit_another(
    two_apis: list[str], pg_sessions: sessionmaker[Session]
) -> None:
    _, noisy = limited_key(pg_sessions, rate=0.1, burst=1)
    quiet_name, quiet = limited_key(pg_sessions, rate=0.1, burst=3)
    unlimited = new_key(pg_sessions)
    assert create(two_apis[0], noisy, "first").status_code == 201
    assert all(create(two_apis[1], noisy, f"n{i}").status_code == 429 for i in range(5))
    assert [create(two_apis[i % 2], quiet, f"q{i}").status_code for i in range(3)] == [201] * 3
    assert all(create(two_apis[i % 2], unlimited, f"u{i}").status_code == 201 for i in range(8))
    assert stored(pg_sessions, quiet_name) == 3


def test_a_new_limit_applies_to_the_next_create(
    two_apis: list[str], pg_sessions: sessionmaker[Session]
) -> None:
    name = f"rl-{uuid.uuid4().hex[:8]}"
    key = new_key(pg_sessions, tenant=name)
    assert create(two_apis[0], key, "before").status_code == 201
    with pg_sessions.begin() as session:  # `genqueue tenants set NAME --rate-limit 0.1 --burst 1`
        set_tenant(session, name, {"rate_limit": 0.1, "burst": 1})
    assert create(two_apis[1], key, "first").status_code == 201
    assert create(two_apis[0], key, "second").status_code == 429


def test_an_unreachable_limit_store_refuses_the_create_with_503(
    client: TestClient, pg_sessions: sessionmaker[Session]
) -> None:
    """The in-process app's Redis is a closed port: a limited tenant's create is not waved
    through unchecked, and nothing is stored; an unlimited tenant never asks Redis."""
    name, key = limited_key(pg_sessions, rate=10, burst=10)
    body = {"model": MODEL, "input": {"prompt": "x"}}
    refused = client.post("/v1/generations", json=body, headers=auth(key))
    assert refused.status_code == 503, refused.text
    assert refused.json()["detail"] == "Rate limit store unavailable; try again shortly"
    assert refused.headers["Retry-After"] == "5"
    assert stored(pg_sessions, name) == 0
    free = client.post("/v1/generations", json=body, headers=auth(new_key(pg_sessions)))
    assert free.status_code == 201


@pytest.mark.parametrize(
    ("url", "uri"),
    [
        ("redis://127.0.0.1:6379/0", "async+redis://127.0.0.1:6379/0"),
        ("rediss://h:6380/1", "async+rediss://h:6380/1"),
        ("redis+socket:///data/redis.sock", "async+redis+unix:///data/redis.sock"),
        ("unix:///data/redis.sock", "async+redis+unix:///data/redis.sock"),
    ],
)
def test_the_limit_store_takes_the_broker_urls_genqueue_uses(url: str, uri: str) -> None:
    assert storage_uri(url) == uri


def test_a_limit_store_that_is_not_redis_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a Redis URL, not amqp://"):
        storage_uri("amqp://guest@rabbit//")
