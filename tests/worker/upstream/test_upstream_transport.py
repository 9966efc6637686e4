"""Failures without an HTTP answer: first simulated, then for real against local sockets."""

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest

from genqueue.net import free_port
from tests.worker.upstream.fakes import FakeUpstream
from worker.upstream import (
    SubmitAmbiguous,
    UpstreamClient,
    UpstreamRejected,
    UpstreamTransient,
)

ENDPOINT = "fal-ai/flux-pro/kontext/text-to-image"
REQ = "/fal-ai/flux-pro/requests/r-9"

NOTHING_SENT = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError]
MAYBE_SENT = [
    httpx.ReadTimeout,
    httpx.ReadError,
    httpx.RemoteProtocolError,
    httpx.WriteTimeout,
    httpx.WriteError,
    httpx.NetworkError,
]


def _calls(client: UpstreamClient) -> dict[str, Callable[[], object]]:
    return {
        "status": lambda: client.status(f"https://queue.fal.run{REQ}/status"),
        "result": lambda: client.result(f"https://queue.fal.run{REQ}"),
        "cancel": lambda: client.cancel(f"https://queue.fal.run{REQ}/cancel"),
    }


@pytest.mark.parametrize("error", NOTHING_SENT)
def test_submit_that_sent_nothing_is_transient_not_ambiguous(
    client: UpstreamClient, fake: FakeUpstream, error: type[httpx.TransportError]
) -> None:
    fake.fail(error)
    with pytest.raises(UpstreamTransient) as caught:
        client.submit(ENDPOINT, {"prompt": "x"})
    assert not isinstance(caught.value, SubmitAmbiguous)
    assert "nothing was sent" in caught.value.message
    assert caught.value.http_status is None
    assert isinstance(caught.value.__cause__, error)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("error", MAYBE_SENT)
def test_submit_that_may_have_arrived_is_ambiguous(
    client: UpstreamClient, fake: FakeUpstream, error: type[httpx.TransportError]
) -> None:
    fake.fail(error)
    with pytest.raises(SubmitAmbiguous, match="may have been accepted") as caught:
        client.submit(ENDPOINT, {"prompt": "x"})
    assert caught.value.http_status is None
    assert len(fake.requests) == 1  # never re-POSTed


@pytest.mark.parametrize("op", ["status", "result", "cancel"])
@pytest.mark.parametrize("error", NOTHING_SENT + MAYBE_SENT)
def test_idempotent_calls_are_transient_never_ambiguous(
    client: UpstreamClient, fake: FakeUpstream, op: str, error: type[httpx.TransportError]
) -> None:
    fake.fail(error)
    with pytest.raises(UpstreamTransient) as caught:
        _calls(client)[op]()
    assert not isinstance(caught.value, SubmitAmbiguous)
    assert caught.value.op == op
    assert len(fake.requests) == 1


def test_unsendable_request_is_rejected(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.fail(httpx.UnsupportedProtocol)
    with pytest.raises(UpstreamRejected, match="cannot send"):
        client.submit(ENDPOINT, {"prompt": "x"})


# --- real sockets ---------------------------------------------------------------------------


@contextmanager
def raw_server(on_connection: Callable[[socket.socket], None]) -> Iterator[tuple[str, list[int]]]:
    """A TCP server on 127.0.0.1 that hands each accepted connection to ``on_connection``;
    yields its base URL and a list that grows by one per accepted connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.1)
    accepted: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            accepted.append(1)
            with conn:
                on_connection(conn)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
            while len(body) < length:
                body += conn.recv(65536)
    return data


def never_answer(conn: socket.socket) -> None:
    read_request(conn)
    time.sleep(0.6)  # longer than the client's read timeout


def close_after_reading(conn: socket.socket) -> None:
    read_request(conn)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
        "http_proxy",
        "https_proxy",
        "all_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


def real_client(base_url: str) -> UpstreamClient:
    return UpstreamClient(base_url=base_url, key="k", connect_timeout=0.5, read_timeout=0.3)


def test_real_read_timeout_on_submit_is_ambiguous() -> None:
    with raw_server(never_answer) as (url, accepted), real_client(url) as client:
        started = time.monotonic()
        with pytest.raises(SubmitAmbiguous) as caught:
            client.submit(ENDPOINT, {"prompt": "x"})
        assert time.monotonic() - started < 2
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        assert accepted == [1]


def test_real_read_timeout_on_status_is_transient() -> None:
    with raw_server(never_answer) as (url, accepted), real_client(url) as client:
        with pytest.raises(UpstreamTransient) as caught:
            client.status(f"https://queue.fal.run{REQ}/status")
        assert not isinstance(caught.value, SubmitAmbiguous)
        assert accepted == [1]


def test_real_close_after_request_is_ambiguous() -> None:
    with raw_server(close_after_reading) as (url, accepted), real_client(url) as client:
        with pytest.raises(SubmitAmbiguous) as caught:
            client.submit(ENDPOINT, {"prompt": "x"})
        assert isinstance(caught.value.__cause__, httpx.RemoteProtocolError)
        assert accepted == [1]


def test_real_connection_refused_is_transient_not_ambiguous() -> None:
    port = free_port()  # nothing listens on it
    with (
        real_client(f"http://127.0.0.1:{port}") as client,
        pytest.raises(UpstreamTransient) as caught,
    ):
        client.submit(ENDPOINT, {"prompt": "x"})
    assert not isinstance(caught.value, SubmitAmbiguous)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
