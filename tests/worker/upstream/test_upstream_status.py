from typing import Any

import pytest

from tests.worker.upstream.fakes import BASE, FakeUpstream
from worker.upstream import (
    QueueState,
    UpstreamClient,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)

RID = "r-0001"
FAL_REQ = f"https://queue.fal.run/fal-ai/flux-pro/requests/{RID}"
STATUS_URL = f"{FAL_REQ}/status"
URLS = {"response_url": FAL_REQ, "status_url": STATUS_URL, "cancel_url": f"{FAL_REQ}/cancel"}


def test_202_in_queue_with_position(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(
        202,
        json={
            "status": "IN_QUEUE",
            "request_id": RID,
            **URLS,
            "queue_position": 3,
            "logs": None,
            "metrics": {},
        },
    )
    report = client.status(STATUS_URL)

    assert report.state is QueueState.IN_QUEUE
    assert report.queue_position == 3
    assert (report.error, report.error_type, report.logs, report.metrics) == (None, None, None, {})
    assert report.http_status == 202
    (sent,) = fake.requests
    assert sent.method == "GET"
    assert str(sent.url) == f"{BASE}/fal-ai/flux-pro/requests/{RID}/status"  # re-homed
    assert "logs" not in sent.url.params


def test_202_in_progress_with_logs(client: UpstreamClient, fake: FakeUpstream) -> None:
    logs = [
        {
            "message": "step 1/28",
            "level": "INFO",
            "source": "USER",
            "timestamp": "2024-12-20T15:37:17",
        }
    ]
    fake.reply(
        202, json={"status": "IN_PROGRESS", "request_id": RID, **URLS, "logs": logs, "metrics": {}}
    )
    report = client.status(STATUS_URL, with_logs=True)

    assert report.state is QueueState.IN_PROGRESS
    assert report.logs == logs
    assert report.queue_position is None
    assert fake.last.url.params["logs"] == "1"


def test_200_completed_with_metrics(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(
        200,
        json={
            "status": "COMPLETED",
            "request_id": RID,
            **URLS,
            "logs": None,
            "metrics": {"inference_time": 4.21},
        },
    )
    report = client.status(STATUS_URL)
    assert report.state is QueueState.COMPLETED
    assert report.metrics == {"inference_time": 4.21}
    assert report.http_status == 200
    assert report.error is None


def test_200_completed_with_error(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(
        200,
        json={
            "status": "COMPLETED",
            "request_id": RID,
            "logs": None,
            "metrics": {},
            "error": "Runner disconnected",
            "error_type": "runner_disconnected",
        },
    )
    report = client.status(STATUS_URL)
    assert report.state is QueueState.COMPLETED
    assert (report.error, report.error_type) == ("Runner disconnected", "runner_disconnected")


def test_queue_position_only_counts_while_queued(
    client: UpstreamClient, fake: FakeUpstream
) -> None:
    fake.reply(202, json={"status": "IN_PROGRESS", "queue_position": 0, "logs": None})
    assert client.status(STATUS_URL).queue_position is None


def test_missing_optional_fields_are_tolerated(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(202, json={"status": "IN_QUEUE"})
    report = client.status(STATUS_URL)
    assert (report.queue_position, report.metrics, report.logs) == (None, {}, None)


@pytest.mark.parametrize(
    "reply",
    [
        {"json": {"status": "FAILED", "request_id": RID}},
        {"json": {"status": "in_queue"}},
        {"json": {"request_id": RID}},
        {"json": {"status": ["IN_QUEUE"]}},
        {"json": ["IN_QUEUE"]},
        {"text": '{"status": "IN_QUEUE"'},
        {"text": "<html>hello</html>"},
    ],
)
def test_malformed_answers_are_transient_protocol_errors(
    client: UpstreamClient, fake: FakeUpstream, reply: dict[str, Any]
) -> None:
    fake.reply(200, **reply)
    with pytest.raises(UpstreamTransient) as caught:
        client.status(STATUS_URL)
    assert caught.value.op == "status"
    assert caught.value.http_status == 200
    assert caught.value.message.startswith("status: HTTP 200 from upstream: ")


def test_unknown_status_value_is_named(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(200, json={"status": "FAILED"})
    with pytest.raises(UpstreamTransient, match="unknown status value 'FAILED'"):
        client.status(STATUS_URL)


def test_404_is_not_found(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(404, json={"detail": "Request not found"})
    with pytest.raises(UpstreamNotFound, match="status: HTTP 404 from upstream: Request not found"):
        client.status(STATUS_URL)


@pytest.mark.parametrize(
    ("code", "headers", "body", "expected"),
    [
        (500, {"x-fal-request-id": "x"}, {"detail": "oops"}, UpstreamTransient),
        (502, {}, "<html>502 Bad Gateway nginx</html>", UpstreamTransient),
        (503, {}, {"detail": "down"}, UpstreamTransient),
        (504, {}, "<html>504 nginx</html>", UpstreamTransient),
        (504, {"X-Fal-Request-Timeout-Type": "user"}, {"detail": "timed out"}, UpstreamRejected),
        (401, {}, {"detail": "Unauthorized"}, UpstreamRejected),
        (403, {}, {"detail": "Forbidden"}, UpstreamRejected),
        (400, {}, {"detail": "bad"}, UpstreamRejected),
        (408, {}, {"detail": "timeout"}, UpstreamTransient),
        (409, {}, {"detail": "conflict"}, UpstreamTransient),
        (429, {"Retry-After": "2"}, {"detail": "rate"}, UpstreamTransient),
    ],
)
def test_error_answers(
    client: UpstreamClient,
    fake: FakeUpstream,
    code: int,
    headers: dict[str, str],
    body: object,
    expected: type[Exception],
) -> None:
    if isinstance(body, str):
        fake.reply(code, text=body, headers=headers)
    else:
        fake.reply(code, json=body, headers=headers)
    with pytest.raises(expected) as caught:
        client.status(STATUS_URL)
    assert type(caught.value) is expected
    assert len(fake.requests) == 1
