"""``python -m simulator`` as a real subprocess."""

import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from genqueue.net import free_port, wait_until
from tests.simulator.helpers import MODEL


@pytest.fixture
def cli_server() -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    argv = [sys.executable, "-m", "simulator", "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--run-time", "0.2", "--capacity", "1", "--auth", "Key cli-secret-123"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return httpx.get(f"{url}/_sim/health", timeout=0.5).status_code == 200
        except httpx.TransportError:
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            return False

    try:
        wait_until(up, 15.0, interval=0.01, what="the simulator subprocess")
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_cli_serves_the_queue_and_stops_on_sigint(
    cli_server: tuple[str, subprocess.Popen[str]],
) -> None:
    url, proc = cli_server
    auth = {"Authorization": "Key cli-secret-123"}
    with httpx.Client(base_url=url, headers=auth, timeout=5.0) as http:
        assert (
            http.post(f"/{MODEL}", json={"prompt": "x"}, headers={"Authorization": ""}).status_code
            == 401
        )
        handle = http.post(f"/{MODEL}", json={"prompt": "from the cli"}).json()
        assert handle["status_url"].startswith(f"{url}/fal-ai/flux-pro/requests/")
        wait_until(
            lambda: http.get(handle["status_url"]).status_code == 200,
            5.0,
            interval=0.01,
            what="completion",
        )
        result = http.get(handle["response_url"]).json()
        assert result["prompt"] == "from the cli"
        assert http.get(result["images"][0]["url"]).status_code == 200
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"POST /{MODEL} 200" in output
    assert "cli-secret-123" not in output  # the Authorization value is never logged


def test_cli_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulator", "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    for option in ("--port", "--run-time", "--capacity", "--result-ttl", "--validate", "--auth"):
        assert option in result.stdout
