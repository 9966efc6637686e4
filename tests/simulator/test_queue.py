"""Queue dynamics over HTTP: FIFO, capacity, queue_position countdown, start deadlines, SSE."""

import itertools
import json

import httpx
import pytest

from genqueue.net import wait_until
from simulator import ManualClock
from tests.simulator.conftest import StartServer
from tests.simulator.helpers import MODEL, SimClient

QUEUED, RUNNING, DONE = "IN_QUEUE", "IN_PROGRESS", "COMPLETED"


def _states(api: SimClient, handles: list[dict[str, object]]) -> list[tuple[str, int | None]]:
    """(status, queue_position) of each job, as its status URL says."""
    out = []
    for handle in handles:
        body = api.status(handle).json()
        out.append((body["status"], body.get("queue_position")))
    return out


def test_queue_position_counts_down_with_capacity_one(api: SimClient) -> None:
    handles = [api.submit(f"job {n}") for n in range(4)]
    assert [h["queue_position"] for h in handles] == [0, 0, 1, 2]
    assert _states(api, handles) == [(RUNNING, None), (QUEUED, 0), (QUEUED, 1), (QUEUED, 2)]
    api.advance(10.0)
    assert _states(api, handles) == [(DONE, None), (RUNNING, None), (QUEUED, 0), (QUEUED, 1)]
    api.advance(10.0)
    assert _states(api, handles) == [(DONE, None), (DONE, None), (RUNNING, None), (QUEUED, 0)]
    api.advance(20.0)
    assert _states(api, handles) == [(DONE, None)] * 4
    starts = [api.info(h["request_id"])["started_at"] for h in handles]
    assert [round(b - a, 6) for a, b in itertools.pairwise(starts)] == [10.0] * 3


def test_jobs_finishing_between_polls_start_the_next_at_the_right_time(api: SimClient) -> None:
    first, _, third = (api.submit(f"job {n}") for n in range(3))
    api.advance(25.0)  # first ends at 10, second at 20, third runs since 20
    info = api.info(third["request_id"])
    assert info["state"] == "IN_PROGRESS"
    assert round(info["started_at"] - api.info(first["request_id"])["started_at"]) == 20
    api.advance(5.0)
    assert api.status(third).json()["status"] == "COMPLETED"


def test_capacity_limits_concurrency_and_can_change(api: SimClient) -> None:
    api.sim.configure(capacity=2)
    handles = [api.submit(f"job {n}") for n in range(5)]
    assert api.sim.stats()["jobs"] == {"in_queue": 3, "in_progress": 2, "completed": 0}
    assert [h["queue_position"] for h in handles] == [0, 0, 0, 1, 2]
    api.http.post("/_sim/config", json={"capacity": 0})  # 0 = unlimited
    assert api.sim.stats()["jobs"] == {"in_queue": 0, "in_progress": 5, "completed": 0}


def test_unlimited_capacity_runs_everything_at_once(api: SimClient) -> None:
    api.sim.configure(capacity=None, run_time=1.0)
    handles = [api.submit(f"job {n}") for n in range(20)]
    assert {api.status(h).json()["status"] for h in handles} == {"IN_PROGRESS"}
    api.advance(1.0)
    assert {api.status(h).status_code for h in handles} == {200}


def test_cancelled_jobs_leave_the_line(api: SimClient) -> None:
    handles = [api.submit(f"job {n}") for n in range(4)]
    assert api.cancel(handles[1]).status_code == 202
    assert api.status(handles[2]).json()["queue_position"] == 0
    assert api.status(handles[3]).json()["queue_position"] == 1


def test_jitter_varies_run_times_within_bounds(
    start_server: StartServer, clock: ManualClock
) -> None:
    server = start_server(clock=clock, capacity=None, run_time=2.0, run_time_jitter=0.5, seed=7)
    with httpx.Client(base_url=server.url) as http:
        ids = [http.post(f"/{MODEL}", json={"prompt": "x"}).json()["request_id"] for _ in range(20)]
        clock.advance(3.0)
        runs = []
        for request_id in ids:
            info = server.sim.request_info(request_id)
            assert info is not None
            runs.append(info["completed_at"] - info["started_at"])
    assert all(1.5 - 1e-6 <= run <= 2.5 + 1e-6 for run in runs)
    assert len({round(run, 6) for run in runs}) > 10


def test_start_deadline_times_out_a_job_that_never_started(api: SimClient) -> None:
    api.submit("blocker")
    response = api.http.post(
        f"/{MODEL}", json={"prompt": "late"}, headers={"X-Fal-Request-Timeout": "5"}
    )
    handle = response.json()
    api.advance(4.9)
    assert api.status(handle).json()["status"] == "IN_QUEUE"
    api.advance(0.2)
    status = api.status(handle)
    assert status.status_code == 200
    body = status.json()
    assert (body["status"], body["error"], body["error_type"]) == (
        "COMPLETED",
        "Request timed out",
        "request_timeout",
    )
    result = api.result(handle)
    assert result.status_code == 504
    assert result.json() == {"detail": "Request timed out", "error_type": "request_timeout"}
    assert result.headers["x-fal-request-timeout-type"] == "user"
    assert result.headers["x-fal-error-type"] == "request_timeout"
    assert result.headers["x-fal-request-id"] == handle["request_id"]
    assert api.info(handle["request_id"])["outcome"] == "error"
    assert api.sim.stats()["jobs"] == {"in_queue": 0, "in_progress": 1, "completed": 1}


def test_start_deadline_does_not_stop_a_started_job(api: SimClient) -> None:
    response = api.http.post(
        f"/{MODEL}", json={"prompt": "x"}, headers={"X-Fal-Request-Timeout": "1.5"}
    )
    api.advance(10.0)
    assert api.result(response.json()).status_code == 200


def test_a_timed_out_job_frees_its_place_in_line(api: SimClient) -> None:
    api.submit("blocker")
    api.http.post(f"/{MODEL}", json={"prompt": "t"}, headers={"X-Fal-Request-Timeout": "2"})
    last = api.submit("last")
    assert api.status(last).json()["queue_position"] == 1
    api.advance(3.0)
    assert api.status(last).json()["queue_position"] == 0


@pytest.mark.parametrize("value", ["soon", "0", "-1", "nan"])
def test_invalid_timeout_header_is_400_bad_request(api: SimClient, value: str) -> None:
    response = api.http.post(
        f"/{MODEL}", json={"prompt": "x"}, headers={"X-Fal-Request-Timeout": value}
    )
    assert response.status_code == 400
    assert response.json()["error_type"] == "bad_request"
    assert api.sim.stats()["jobs"]["in_queue"] + api.sim.stats()["jobs"]["in_progress"] == 0


def _events(http: httpx.Client, url: str, params: dict[str, str] | None = None) -> list[str]:
    lines: list[str] = []
    with http.stream("GET", url, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line:
                lines.append(line)
    return lines


def test_status_stream_sends_events_and_pings_until_completed(
    start_server: StartServer,
) -> None:
    server = start_server(run_time=0.3, capacity=1, stream_interval=0.02, stream_ping_interval=0.1)
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        http.post(f"/{MODEL}", json={"prompt": "first"})
        handle = http.post(f"/{MODEL}", json={"prompt": "second"}).json()
        lines = _events(http, handle["status_url"] + "/stream", {"logs": "1"})
    assert ": ping" in lines
    events = [json.loads(line[len("data: ") :]) for line in lines if line.startswith("data: ")]
    assert [e["status"] for e in events] == ["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]
    assert events[0]["queue_position"] == 0
    assert events[-1]["metrics"]["inference_time"] == pytest.approx(0.3)
    assert isinstance(events[-1]["logs"], list)
    stats = server.sim.stats()
    assert stats["calls"]["status"] == 1
    assert stats["responses"]["status:stream"] == 1


def test_status_stream_of_a_completed_job_sends_one_event(api: SimClient) -> None:
    handle = api.submit()
    api.advance(10.0)
    lines = _events(api.http, handle["status_url"] + "/stream/")
    assert [json.loads(line[6:])["status"] for line in lines if line.startswith("data:")] == [
        "COMPLETED"
    ]


def test_stream_stops_quietly_when_the_client_leaves(start_server: StartServer) -> None:
    server = start_server(run_time=60.0, stream_interval=0.02)
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        handle = http.post(f"/{MODEL}", json={"prompt": "x"}).json()
        with http.stream("GET", handle["status_url"] + "/stream") as response:
            first = next(line for line in response.iter_lines() if line.startswith("data:"))
        assert "IN_PROGRESS" in first
        wait_until(
            lambda: http.get("/_sim/stats").status_code == 200,
            5.0,
            interval=0.01,
            what="server alive",
        )
