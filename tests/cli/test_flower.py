"""`genqueue flower`, a real Flower on the session's Redis: every route wants the password
(Flower's own /metrics and /healthcheck too), and the compose file's healthcheck logs in."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from genqueue.net import free_port, wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
USER, PASSWORD = "operator", "a-real-password-" + os.urandom(6).hex()
COMPOSE_PORT = "5555"


@pytest.fixture
def flower(redis_url: str, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENQUEUE_")}
    env |= {
        "GENQUEUE_BROKER_URL": redis_url,
        "GENQUEUE_DATA_DIR": str(tmp_path / "data"),
        "GENQUEUE_FLOWER_PORT": str(port),
        "GENQUEUE_FLOWER_USER": USER,
        "GENQUEUE_FLOWER_PASSWORD": PASSWORD,
    }
    log = tmp_path / "flower.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genqueue", "flower"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"flower exited ({proc.returncode}):\n{log.read_text()}")
        try:
            return httpx.get(f"{url}/healthcheck", timeout=2).status_code > 0
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, 60, interval=0.2, what="flower to listen")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@pytest.mark.parametrize("route", ["/metrics", "/healthcheck", "/api/workers", "/"])
def test_every_route_wants_the_password(flower: str, route: str) -> None:
    assert httpx.get(f"{flower}{route}", timeout=10).status_code == 401
    wrong = httpx.get(f"{flower}{route}", auth=(USER, "not-the-password"), timeout=10)
    assert wrong.status_code == 401
    assert httpx.get(f"{flower}{route}", auth=(USER, PASSWORD), timeout=10).status_code == 200


def test_the_compose_healthcheck_logs_in(flower: str) -> None:
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["flower"]
    kind, *argv = service["healthcheck"]["test"]
    assert kind == "CMD"
    assert argv[0] == "python"
    port = flower.rsplit(":", 1)[1]
    argv = [sys.executable, *(a.replace(f":{COMPOSE_PORT}/", f":{port}/") for a in argv[1:])]
    assert any(f":{port}/healthcheck" in a for a in argv), argv

    def check(password: str) -> int:
        env = {**os.environ, "GENQUEUE_FLOWER_USER": USER, "GENQUEUE_FLOWER_PASSWORD": password}
        return subprocess.run(argv, env=env, capture_output=True, timeout=30).returncode

    assert check(PASSWORD) == 0
    assert check("not-the-password") != 0
