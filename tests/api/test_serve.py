"""The API as it is deployed: ``uvicorn api.app:app`` and ``api.main.serve`` in their own
processes, configured from the environment, publishing to a real Redis with the real publisher."""

import asyncio
import base64
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy.orm import Session, sessionmaker

from api.main import _Config
from genqueue.net import free_port, wait_until
from models import tasknames
from tests.api.support import MODEL, auth, new_key
from tests.support.services import redis_database


@pytest.fixture(scope="module")
def broker_url() -> Iterator[str]:
    with redis_database() as url:
        yield url


def _serve(argv: list[str], env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_until(
            lambda: httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200,
            60,
            what="the API to answer",
        )
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)  # its worker processes too
        proc.wait(10)
        raise AssertionError(log.read_text()) from None
    return proc


def _env(pg_url: str, broker_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "GENQUEUE_DATABASE_URL": pg_url,
        "GENQUEUE_BROKER_URL": broker_url,
        "GENQUEUE_DATA_DIR": str(tmp_path),
    }


def test_uvicorn_serves_the_module_app_and_publishes_to_the_broker(
    pg_url: str, broker_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "api.app:app", "--port", str(port)]
    proc = _serve(argv, _env(pg_url, broker_url, tmp_path), port, tmp_path / "uvicorn.log")
    try:
        base = f"http://127.0.0.1:{port}"
        ready = httpx.get(f"{base}/readyz")
        assert ready.json() == {"status": "ok", "checks": {"database": True, "broker": True}}
        key = new_key(pg_sessions)
        rid = httpx.post(f"{base}/{MODEL}", json={"prompt": "x"}, headers=auth(key)).json()[
            "request_id"
        ]
        [raw] = redis.Redis.from_url(broker_url).lrange(tasknames.QUEUE, 0, -1)
        message = json.loads(raw)
        args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
        assert (message["headers"]["task"], args) == (tasknames.SUBMIT_MANY, [[rid]])
    finally:
        proc.terminate()
        proc.wait(10)


def test_serve_runs_uvicorn_and_readyz_sees_a_dead_broker(pg_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = _env(pg_url, "redis://127.0.0.1:1/0", tmp_path)
    code = f"from api.main import serve; serve('127.0.0.1', {port})"
    proc = _serve([sys.executable, "-c", code], env, port, tmp_path / "serve.log")
    try:
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"database": True, "broker": False}
    finally:
        proc.terminate()
        proc.wait(10)


def _requests_counted(metrics: str, route: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        if line.startswith("genqueue_http_requests_total{") and f'route="{route}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_genqueue_api_with_two_workers_shares_the_port_and_sums_metrics(
    pg_url: str, broker_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    port = free_port()
    argv = [sys.executable, "-m", "genqueue", "api", "--port", str(port), "--workers", "2"]
    proc = _serve(argv, _env(pg_url, broker_url, tmp_path), port, tmp_path / "api.log")
    try:
        base = f"http://127.0.0.1:{port}"
        key = new_key(pg_sessions)
        ids = set()
        for i in range(40):  # new connections, so both processes take some of them
            answer = httpx.post(f"{base}/{MODEL}", json={"prompt": f"w{i}"}, headers=auth(key))
            assert answer.status_code == 200, answer.text
            ids.add(answer.json()["request_id"])
        assert len(ids) == 40
        # Whichever process answers the scrape, it counts all 40 (one process alone would
        # show only its share).
        for _ in range(4):
            metrics = httpx.get(f"{base}/metrics").text
            assert _requests_counted(metrics, f"/{MODEL}") == 40
        assert (tmp_path / "metrics" / f"api-{port}").is_dir()
        children = subprocess.run(
            ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) >= 2, children
    finally:
        proc.terminate()
        proc.wait(15)
    assert proc.returncode == 0


def test_the_listener_gives_accepted_connections_tcp_nodelay() -> None:
    """uvicorn#3149: its own listener makes asyncio skip TCP_NODELAY, and with several
    processes every keep-alive answer then waited ~40 ms for a delayed ACK."""
    listener = _Config("api.main:served_app", factory=True, host="127.0.0.1", port=0).bind_socket()
    assert listener.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
        async with server:
            host, port = listener.getsockname()[:2]
            _, writer = await asyncio.open_connection(host, port)
            for _ in range(100):
                if seen:
                    break
                await asyncio.sleep(0.01)
            writer.close()

    asyncio.run(accept_one())
    assert seen
    assert seen[0] != 0


def test_a_serving_process_freezes_what_it_built_before_serving(tmp_path: Path) -> None:
    code = "import gc; from api.main import served_app; served_app(); print(gc.get_freeze_count())"
    env = {**os.environ, "GENQUEUE_DATA_DIR": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert int(out.stdout.strip()) > 10_000  # the app, its schemas, the ORM: not a handful


def test_served_api_redacts_fal_webhook_in_its_access_log_and_ignores_forwarded_headers(
    pg_url: str, broker_url: str, pg_sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """A webhook URL may carry a token: the access log shows ``fal_webhook=[redacted]``. And
    uvicorn's own proxy-header handling (which believes 127.0.0.1) is off: X-Forwarded-Proto
    from a peer not in GENQUEUE_TRUSTED_PROXIES changes no URL."""
    port = free_port()
    env = _env(pg_url, broker_url, tmp_path)
    code = f"from api.main import serve; serve('127.0.0.1', {port})"
    log = tmp_path / "serve.log"
    proc = _serve([sys.executable, "-c", code], env, port, log)
    try:
        secret = "s3cr3t-webhook-token"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/{MODEL}",
            params={"fal_webhook": f"https://hooks.example/fal?token={secret}", "x": "1"},
            json={"prompt": "x"},
            headers={**auth(new_key(pg_sessions)), "X-Forwarded-Proto": "https"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["status_url"].startswith(f"http://127.0.0.1:{port}/")
        wait_until(lambda: "fal_webhook=" in log.read_text(), 10, what="the access log line")
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text()
    assert secret not in text
    assert "fal_webhook=[redacted]&x=1" in text


def test_metrics_can_be_served_on_an_internal_port_only(pg_url: str, tmp_path: Path) -> None:
    port, internal = free_port(), free_port()
    env = {
        **_env(pg_url, "redis://127.0.0.1:1/0", tmp_path),
        "GENQUEUE_METRICS_PORT": str(internal),
    }
    code = f"from api.main import serve; serve('127.0.0.1', {port})"
    proc = _serve([sys.executable, "-c", code], env, port, tmp_path / "serve.log")
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 404
        scraped = httpx.get(f"http://127.0.0.1:{internal}/metrics")
        assert scraped.status_code == 200
        assert 'route="/healthz"' in scraped.text  # the API port's requests are counted
        assert httpx.get(f"http://127.0.0.1:{internal}/healthz").status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)
