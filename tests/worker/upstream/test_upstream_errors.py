"""Error objects: Retry-After, messages, pickling, and the key never leaking."""

import contextlib
import json
import logging
import pickle
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from pydantic import SecretStr

from tests.worker.upstream.fakes import BASE, KEY, FakeUpstream
from worker.upstream import (
    QueueState,
    SubmitAmbiguous,
    UpstreamClient,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)
from worker.upstream.responses import MAX_RETRY_AFTER_SECONDS, parse_retry_after

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
ENDPOINT = "fal-ai/flux-pro/kontext/text-to-image"
SECRET_HALF = KEY.partition(":")[2]


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("99999", MAX_RETRY_AFTER_SECONDS),
        (format_datetime(NOW + timedelta(seconds=30), usegmt=True), 30.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
        ("Tue, 24 Nov 2026 12:02:00 GMT", 120.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after(header, now=NOW) == seconds


def test_from_response_builds_a_short_message() -> None:
    response = httpx.Response(
        503,
        json={"detail": "Runner disconnected", "error_type": "runner_disconnected"},
        headers={"Retry-After": "12"},
    )
    error = UpstreamTransient.from_response(response, op="status")
    assert str(error) == "status: HTTP 503 from upstream: Runner disconnected"
    assert (error.op, error.http_status, error.error_type, error.retry_after) == (
        "status",
        503,
        "runner_disconnected",
        12.0,
    )
    assert error.body == {"detail": "Runner disconnected", "error_type": "runner_disconnected"}


def test_long_text_bodies_are_cut() -> None:
    error = UpstreamTransient.from_response(httpx.Response(500, text="x" * 50_000), op="status")
    assert isinstance(error.body, str)
    assert len(error.body) < 2100
    assert len(error.message) < 400


def test_error_type_falls_back_to_the_header() -> None:
    response = httpx.Response(
        500, json={"detail": "x"}, headers={"X-Fal-Error-Type": "internal_error"}
    )
    assert UpstreamError.from_response(response, op="result").error_type == "internal_error"


@pytest.mark.parametrize(
    "error",
    [
        SubmitAmbiguous("submit: ReadTimeout", op="submit", retry_after=None),
        UpstreamTransient("status: HTTP 429", op="status", http_status=429, retry_after=3.0),
        UpstreamNotFound("cancel: HTTP 404", op="cancel", http_status=404, body={"detail": "x"}),
        UpstreamRejected("submit: HTTP 422", op="submit", http_status=422, error_type="missing"),
    ],
)
def test_errors_survive_pickling(error: UpstreamError) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert copy.__dict__ == error.__dict__
    assert str(copy) == str(error)


def test_repr_names_the_essentials() -> None:
    error = UpstreamNotFound("status: HTTP 404 from upstream: gone", op="status", http_status=404)
    assert repr(error) == (
        "UpstreamNotFound(op='status', http_status=404, error_type=None, "
        "message='status: HTTP 404 from upstream: gone')"
    )


# --- the key never leaks --------------------------------------------------------------------


def _echoing_key(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A relay that echoes the credentials it got in its error bodies (it happens)."""

    def answer(request: httpx.Request) -> httpx.Response:
        auth = request.headers.get("authorization", "")
        body = {"detail": f"invalid token {auth}", "secret": SECRET_HALF, "error_type": "auth"}
        return httpx.Response(status, json=body)

    return answer


@pytest.mark.parametrize("status", [200, 400, 401, 404, 422, 429, 500, 502, 504])
def test_key_never_in_errors_or_answers(status: int, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    transport = httpx.MockTransport(_echoing_key(status))
    seen: list[str] = []
    with UpstreamClient(base_url=BASE, key=SecretStr(KEY), transport=transport) as client:
        seen.append(repr(client))
        calls: list[Callable[[], object]] = [
            lambda: client.submit(ENDPOINT, {"prompt": "x"}),
            lambda: client.status(f"{BASE}/fal-ai/flux-pro/requests/r/status"),
            lambda: client.result(f"{BASE}/fal-ai/flux-pro/requests/r"),
            lambda: client.cancel(f"{BASE}/fal-ai/flux-pro/requests/r/cancel"),
        ]
        for call in calls:
            try:
                answer = call()
            except UpstreamError as error:
                seen += [str(error), repr(error), error.message, json.dumps(error.body)]
                seen += [str(arg) for arg in error.args]
            else:
                seen.append(repr(answer))
                seen.append(json.dumps(getattr(answer, "body", None)))
                seen.append(json.dumps(getattr(answer, "raw", None)))
    seen += [record.getMessage() for record in caplog.records]
    for text in seen:
        assert SECRET_HALF not in text, text


def test_key_never_in_transport_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeUpstream()
    fake.fail(httpx.ReadTimeout)
    transport = httpx.MockTransport(fake)
    with (
        UpstreamClient(base_url=BASE, key=KEY, transport=transport) as client,
        pytest.raises(SubmitAmbiguous) as caught,
    ):
        client.submit(ENDPOINT, {"prompt": "x"})
    assert fake.last.headers["authorization"] == f"Key {KEY}"  # it was sent, to the base only
    for text in [str(caught.value), repr(caught.value), *(r.getMessage() for r in caplog.records)]:
        assert SECRET_HALF not in text


def test_urls_from_elsewhere_never_receive_the_key(fake: FakeUpstream) -> None:
    fake.reply(202, json={"status": "IN_QUEUE", "queue_position": 1})
    with UpstreamClient(base_url=BASE, key=KEY, transport=httpx.MockTransport(fake)) as client:
        client.status("https://evil.example/steal/status")
    assert fake.last.url.host == "relay.example"


# --- one attempt per call, one pool for many threads -----------------------------------------


@pytest.mark.parametrize("status", [200, 202, 400, 404, 408, 429, 500, 502, 503, 504])
def test_exactly_one_http_attempt_per_call(fake: FakeUpstream, status: int) -> None:
    fake.reply(status, json={"detail": "x"}, headers={"Retry-After": "0"})
    with UpstreamClient(base_url=BASE, key=KEY, transport=httpx.MockTransport(fake)) as client:
        calls: list[Callable[[], object]] = [
            lambda: client.submit(ENDPOINT, {"prompt": "x"}),
            lambda: client.status(f"{BASE}/fal-ai/flux-pro/requests/r/status"),
            lambda: client.result(f"{BASE}/fal-ai/flux-pro/requests/r"),
            lambda: client.cancel(f"{BASE}/fal-ai/flux-pro/requests/r/cancel"),
        ]
        for number, call in enumerate(calls, start=1):
            with contextlib.suppress(UpstreamError):
                call()
            assert len(fake.requests) == number


def test_one_client_serves_many_threads() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        position = int(request.url.path.split("/")[-2].removeprefix("r"))
        return httpx.Response(202, json={"status": "IN_QUEUE", "queue_position": position})

    transport = httpx.MockTransport(answer)
    with (
        UpstreamClient(base_url=BASE, key=KEY, transport=transport) as client,
        ThreadPoolExecutor(max_workers=16) as pool,
    ):
        reports = list(
            pool.map(
                lambda n: client.status(f"https://queue.fal.run/a/b/requests/r{n}/status"),
                range(300),
            )
        )
    assert [r.queue_position for r in reports] == list(range(300))
    assert {r.state for r in reports} == {QueueState.IN_QUEUE}


def test_key_scrubbed_from_a_handles_raw_answer(fake: FakeUpstream) -> None:
    fake.reply(200, json={"request_id": "r1", "echo": f"Bearer {KEY}", "queue_position": 2})
    transport = httpx.MockTransport(fake)
    with UpstreamClient(base_url=BASE, key=KEY, transport=transport) as client:
        handle = client.submit(ENDPOINT, {"prompt": "x"})
    assert handle.raw["echo"] == "Bearer **********"
    assert SECRET_HALF not in repr(handle)
    assert handle.queue_position == 2
