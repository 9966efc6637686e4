"""``?fal_webhook=`` delivery: payloads for success and failure, duplicates on request."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from genqueue.net import wait_until
from simulator import FaultRule
from tests.simulator.helpers import MODEL, SimClient


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        self.server.received.append((dict(self.headers), body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _submit(api: SimClient, receiver: _Receiver, prompt: str) -> dict[str, Any]:
    response = api.http.post(
        f"/{MODEL}", params={"fal_webhook": receiver.url}, json={"prompt": prompt, "seed": 7}
    )
    assert response.status_code == 200
    handle: dict[str, Any] = response.json()
    return handle


def test_webhook_is_posted_when_the_job_completes(api: SimClient, receiver: _Receiver) -> None:
    handle = _submit(api, receiver, "hooked")
    api.advance(10.0)
    [(headers, payload)] = wait_until(
        lambda: receiver.received, 5.0, interval=0.01, what="the webhook"
    )
    assert payload["request_id"] == payload["gateway_request_id"] == handle["request_id"]
    assert payload["status"] == "OK"
    assert payload["payload"]["seed"] == 7
    assert payload["payload"]["prompt"] == "hooked"
    assert payload["payload"]["images"][0]["url"].startswith(api.server.url + "/files/")
    assert headers["X-Fal-Webhook-Request-Id"] == handle["request_id"]


def test_failed_job_webhook_says_error(api: SimClient, receiver: _Receiver) -> None:
    api.sim.add_fault(FaultRule(kind="model_error", status_code=503))
    handle = _submit(api, receiver, "doomed")
    api.advance(10.0)
    [(_, payload)] = wait_until(lambda: receiver.received, 5.0, interval=0.01, what="the webhook")
    assert (payload["request_id"], payload["status"]) == (handle["request_id"], "ERROR")
    assert payload["error"] == "Invalid status code: 503"
    assert payload["payload"] == {
        "detail": "Runner disconnected",
        "error_type": "runner_disconnected",
    }


def test_duplicate_webhook_fault_delivers_twice(api: SimClient, receiver: _Receiver) -> None:
    api.sim.add_fault(FaultRule(op="submit", kind="duplicate_webhook", times=1))
    handle = _submit(api, receiver, "twice")
    api.advance(10.0)
    wait_until(lambda: len(receiver.received) == 2, 5.0, interval=0.01, what="two deliveries")
    assert {body["request_id"] for _, body in receiver.received} == {handle["request_id"]}
