"""``?fal_webhook=`` delivery: payloads for success and failure, duplicates on request."""

import base64
import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from genqueue.net import wait_until
from simulator import FaultRule
from simulator.signing import signed_message
from simulator.webhooks import TRIES, retry_gap
from tests.simulator.helpers import MODEL, SimClient
from tests.support.serving import serving

PATIENCE = 30.0
"""Seconds to wait for the webhook thread: it returns as soon as what it waits for is there;
the margin is for a loaded machine (5 s once ran out under a load average of 20)."""


class _Receiver(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.raw: list[bytes] = []
        self.answers: list[int] = []
        """Status codes to answer with, first to last; 200 once they are used up."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["content-length"]))
        self.server.raw.append(raw)
        self.server.received.append((dict(self.headers), json.loads(raw)))
        answers = self.server.answers
        self.send_response(answers.pop(0) if answers else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    with serving(server, poll_interval=0.02):
        yield server


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
        lambda: receiver.received, PATIENCE, interval=0.01, what="the webhook"
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
    [(_, payload)] = wait_until(
        lambda: receiver.received, PATIENCE, interval=0.01, what="the webhook"
    )
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
    wait_until(lambda: len(receiver.received) == 2, PATIENCE, interval=0.01, what="two deliveries")
    assert {body["request_id"] for _, body in receiver.received} == {handle["request_id"]}


def _public_keys(api: SimClient) -> list[Ed25519PublicKey]:
    jwks = api.http.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys = []
    for jwk in jwks.json()["keys"]:
        assert (jwk["kty"], jwk["crv"]) == ("OKP", "Ed25519")
        raw = base64.urlsafe_b64decode(jwk["x"] + "=" * (-len(jwk["x"]) % 4))
        keys.append(Ed25519PublicKey.from_public_bytes(raw))
    return keys


def _verifies(keys: list[Ed25519PublicKey], headers: dict[str, str], raw: bytes) -> bool:
    message = signed_message(
        headers["X-Fal-Webhook-Request-Id"],
        headers["X-Fal-Webhook-User-Id"],
        headers["X-Fal-Webhook-Timestamp"],
        raw,
    )
    for key in keys:
        try:
            key.verify(bytes.fromhex(headers["X-Fal-Webhook-Signature"]), message)
        except (InvalidSignature, ValueError):
            continue
        return True
    return False


def test_webhooks_are_signed_with_a_key_of_the_jwks(api: SimClient, receiver: _Receiver) -> None:
    handle = _submit(api, receiver, "signed")
    api.advance(10.0)
    [(headers, _)] = wait_until(lambda: receiver.received, PATIENCE, interval=0.01, what="webhook")
    assert headers["X-Fal-Webhook-Request-Id"] == handle["request_id"]
    assert abs(int(headers["X-Fal-Webhook-Timestamp"]) - time.time()) < 60
    keys = _public_keys(api)
    assert _verifies(keys, headers, receiver.raw[0])
    assert not _verifies(keys, headers, receiver.raw[0] + b" ")


def test_a_rotated_key_replaces_the_old_one_in_the_jwks(api: SimClient) -> None:
    before = api.http.get("/.well-known/jwks.json").json()["keys"]
    kid = api.http.post("/_sim/webhook-key/rotate").json()["kid"]
    after = api.http.get("/.well-known/jwks.json").json()["keys"]
    assert [k["kid"] for k in after] == [kid]
    assert after[0]["x"] != before[0]["x"]


def test_jwks_down_answers_503(api: SimClient) -> None:
    api.sim.configure(jwks_down=True)
    assert api.http.get("/.well-known/jwks.json").status_code == 503


def test_a_refused_webhook_is_tried_again_like_fal(api: SimClient, receiver: _Receiver) -> None:
    api.sim.configure(webhook_retry_scale=0.0001)
    receiver.answers = [500, 503]
    handle = _submit(api, receiver, "retried")
    api.advance(10.0)

    def tries() -> list[tuple[int, int | None]]:
        # The sender logs a try once its POST has been answered: the receiver has the third
        # body a moment before the simulator's log has its status, so wait on the log.
        info = api.sim.request_info(handle["request_id"])
        assert info is not None
        return [(t["attempt"], t["status"]) for t in info["webhooks"]]

    wait_until(lambda: len(tries()) == 3, PATIENCE, interval=0.01, what="three tries")
    assert tries() == [(1, 500), (2, 503), (3, 200)]
    assert len(receiver.received) == 3


def test_a_webhook_nobody_takes_is_given_up_after_ten_tries(
    api: SimClient, receiver: _Receiver
) -> None:
    api.sim.configure(webhook_retry_scale=0.00001)
    receiver.answers = [500] * 20
    _submit(api, receiver, "refused")
    api.advance(10.0)
    wait_until(
        lambda: api.sim.stats()["webhooks"].get("gave_up") == 1, PATIENCE, what="the last try"
    )
    assert len(receiver.received) == TRIES == 10
    assert sum(retry_gap(n, 1.0) for n in range(1, TRIES)) == pytest.approx(7200.0)


def test_dropped_webhooks_are_never_sent(api: SimClient, receiver: _Receiver) -> None:
    api.sim.configure(webhook_drop=1.0)
    handle = _submit(api, receiver, "lost")
    api.advance(10.0)
    wait_until(lambda: api.sim.stats()["webhooks"].get("dropped") == 1, PATIENCE, what="the drop")
    assert receiver.received == []
    info = api.sim.request_info(handle["request_id"])
    assert info is not None
    assert [t["status"] for t in info["webhooks"]] == ["dropped"]


def test_duplicate_share_sends_twice(api: SimClient, receiver: _Receiver) -> None:
    api.sim.configure(webhook_duplicate=1.0)
    _submit(api, receiver, "doubled")
    api.advance(10.0)
    wait_until(lambda: len(receiver.received) == 2, PATIENCE, interval=0.01, what="two deliveries")


def test_forged_copies_precede_the_genuine_one_and_none_verifies(
    api: SimClient, receiver: _Receiver
) -> None:
    kinds = ["bad_signature", "wrong_key", "stale_timestamp", "other_payload"]
    api.sim.configure(webhook_forge=kinds)
    receiver.answers = [401] * len(kinds)
    handle = _submit(api, receiver, "forged")
    api.advance(10.0)
    wait_until(lambda: len(receiver.received) == 5, PATIENCE, interval=0.01, what="five deliveries")
    keys = _public_keys(api)
    verdicts = [
        _verifies(keys, headers, raw)
        for (headers, _), raw in zip(receiver.received, receiver.raw, strict=True)
    ]
    stamps = [int(headers["X-Fal-Webhook-Timestamp"]) for headers, _ in receiver.received]
    # the stale one verifies (only its timestamp gives it away); the genuine one comes last
    assert sorted(verdicts) == [False, False, False, True, True]
    assert verdicts[-1] is True
    assert sum(1 for s in stamps if time.time() - s > 3000) == 1
    assert all(body["request_id"] == handle["request_id"] for _, body in receiver.received)
    assert api.sim.stats()["webhooks"]["forged_refused"] == len(kinds)


def test_webhook_knobs_are_checked(api: SimClient) -> None:
    for bad in ({"webhook_drop": 1.5}, {"webhook_forge": ["nonsense"]}, {"webhook_delay": -1}):
        assert api.http.post("/_sim/config", json=bad).status_code == 422
