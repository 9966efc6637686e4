"""The client against the simulator over real HTTP: the protocol end to end, and real faults."""

import time
from collections.abc import Iterator

import pytest

from simulator import FaultRule, SimulatorConfig, SimulatorServer
from worker.upstream import (
    QueueState,
    StatusReport,
    SubmitAmbiguous,
    SubmitHandle,
    UpstreamCancelOutcome,
    UpstreamClient,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)

ENDPOINT = "fal-ai/flux-pro/kontext/text-to-image"
TOKEN = "relay-token-0123456789"


@pytest.fixture(scope="module")
def server() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimulatorConfig(run_time=0.2, capacity=1)) as srv:
        yield srv


@pytest.fixture
def srv(server: SimulatorServer) -> SimulatorServer:
    server.sim.reset()
    # answer with fal's own host, as a relay passing fal's body through does
    server.sim.configure(auth=f"Bearer {TOKEN}", public_url="https://queue.fal.run")
    return server


@pytest.fixture
def client(srv: SimulatorServer) -> Iterator[UpstreamClient]:
    with UpstreamClient(base_url=srv.url, key=TOKEN, auth_scheme="Bearer") as upstream:
        yield upstream


def wait_completed(
    client: UpstreamClient, handle: SubmitHandle, timeout: float = 5.0
) -> StatusReport:
    """Poll until COMPLETED; bounded: after ``timeout`` the last report is returned as is."""
    deadline = time.monotonic() + timeout
    while True:
        report = client.status(handle.status_url, with_logs=True)
        if report.state is QueueState.COMPLETED or time.monotonic() > deadline:
            return report
        time.sleep(0.02)


def test_round_trip(client: UpstreamClient, srv: SimulatorServer) -> None:
    handle = client.submit(ENDPOINT, {"prompt": "a tiger eye", "aspect_ratio": "16:9"})
    assert handle.raw["status_url"].startswith("https://queue.fal.run/fal-ai/flux-pro/requests/")
    request_base = f"{srv.url}/fal-ai/flux-pro/requests/{handle.request_id}"
    assert (handle.response_url, handle.status_url, handle.cancel_url) == (
        request_base,
        f"{request_base}/status",
        f"{request_base}/cancel",
    )

    report = wait_completed(client, handle)
    assert report.state is QueueState.COMPLETED
    assert report.http_status == 200
    assert report.error is None
    assert report.metrics["inference_time"] > 0

    answer = client.result(handle.response_url)
    assert answer.ok
    assert answer.http_status == 200
    assert answer.body["prompt"] == "a tiger eye"
    assert (answer.body["images"][0]["width"], answer.body["images"][0]["height"]) == (1392, 752)

    assert client.cancel(handle.cancel_url) is UpstreamCancelOutcome.ALREADY_COMPLETED
    info = srv.sim.request_info(handle.request_id)
    assert info is not None
    calls = info["calls"]
    assert calls["submit"] == 1
    assert calls["result"] == 1
    assert calls["cancel"] == 1


def test_queued_job_cancelled(client: UpstreamClient) -> None:
    client.submit(ENDPOINT, {"prompt": "first takes the only slot"})
    handle = client.submit(ENDPOINT, {"prompt": "second waits"})

    report = client.status(handle.status_url)
    assert (report.state, report.queue_position, report.http_status) == (
        QueueState.IN_QUEUE,
        0,
        202,
    )
    with pytest.raises(UpstreamTransient) as caught:
        client.result(handle.response_url)  # 400: not completed yet
    assert caught.value.http_status == 400

    assert client.cancel(handle.cancel_url) is UpstreamCancelOutcome.CANCELLATION_REQUESTED
    report = wait_completed(client, handle)
    assert report.state is QueueState.COMPLETED
    assert report.error_type == "client_cancelled"
    answer = client.result(handle.response_url)
    assert (answer.ok, answer.http_status, answer.error_type) == (False, 499, "client_cancelled")


def test_validation_error_at_submit(client: UpstreamClient) -> None:
    with pytest.raises(UpstreamRejected) as caught:
        client.submit(ENDPOINT, {"prompt": "x", "num_images": 9})
    assert caught.value.http_status == 422
    assert "num_images" in caught.value.message


def test_wrong_token_is_rejected(srv: SimulatorServer) -> None:
    with (
        UpstreamClient(base_url=srv.url, key="wrong-token-xyz", auth_scheme="Bearer") as client,
        pytest.raises(UpstreamRejected) as caught,
    ):
        client.submit(ENDPOINT, {"prompt": "x"})
    assert caught.value.http_status in (401, 403)
    assert "wrong-token-xyz" not in repr(caught.value)


def test_unknown_request(client: UpstreamClient, srv: SimulatorServer) -> None:
    with pytest.raises(UpstreamNotFound):
        client.status(f"{srv.url}/fal-ai/flux-pro/requests/no-such-id/status")


def test_accepted_then_reset_is_ambiguous_and_the_job_exists(
    client: UpstreamClient, srv: SimulatorServer
) -> None:
    srv.sim.add_fault(FaultRule(op="submit", kind="accept_then_reset", times=1))
    with pytest.raises(SubmitAmbiguous):
        client.submit(ENDPOINT, {"prompt": "lost answer"})
    (record,) = srv.sim.submits()  # exactly one POST, and upstream accepted it
    assert record["body"] == {"prompt": "lost answer"}
    assert srv.sim.request_info(record["request_id"]) is not None


def test_rate_limit_carries_retry_after(client: UpstreamClient, srv: SimulatorServer) -> None:
    handle = client.submit(ENDPOINT, {"prompt": "x"})
    srv.sim.add_fault(FaultRule(op="status", kind="retry_after", retry_after=3, times=1))
    with pytest.raises(UpstreamTransient) as caught:
        client.status(handle.status_url)
    assert (caught.value.http_status, caught.value.retry_after) == (429, 3.0)


def test_ingress_502_is_transient(client: UpstreamClient, srv: SimulatorServer) -> None:
    srv.sim.add_fault(FaultRule(op="submit", kind="ingress_502", times=1))
    with pytest.raises(UpstreamTransient) as caught:
        client.submit(ENDPOINT, {"prompt": "x"})
    assert not isinstance(caught.value, SubmitAmbiguous)
    assert "ingress" in caught.value.message
    assert srv.sim.stats()["jobs"] == {"in_queue": 0, "in_progress": 0, "completed": 0}


def test_hung_status_times_out_as_transient(srv: SimulatorServer) -> None:
    with UpstreamClient(
        base_url=srv.url, key=TOKEN, auth_scheme="Bearer", read_timeout=0.3
    ) as client:
        handle = client.submit(ENDPOINT, {"prompt": "x"})
        srv.sim.add_fault(FaultRule(op="status", kind="hang", delay=1.0, times=1))
        with pytest.raises(UpstreamTransient) as caught:
            client.status(handle.status_url)
        assert not isinstance(caught.value, SubmitAmbiguous)
        assert caught.value.http_status is None
        assert client.status(handle.status_url).state in set(QueueState)  # pool still usable
