import pytest

from tests.worker.upstream.fakes import BASE, FakeUpstream
from worker.upstream import (
    UpstreamClient,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamResult,
    UpstreamTransient,
)

RID = "r-0002"
RESPONSE_URL = f"https://queue.fal.run/fal-ai/flux-pro/requests/{RID}"
OUTPUT = {
    "images": [{"url": "https://v3.fal.media/files/x.jpg", "width": 1024, "height": 1024}],
    "timings": {"inference": 1.22},
    "seed": 920212137,
    "has_nsfw_concepts": [False],
    "prompt": "a tiger eye",
}
VALIDATION = {
    "detail": [
        {
            "loc": ["body", "prompt"],
            "msg": "Content policy violation",
            "type": "content_policy_violation",
        }
    ]
}


def test_200_is_the_model_output(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(200, json=OUTPUT)
    answer = client.result(RESPONSE_URL)
    assert answer == UpstreamResult(http_status=200, body=OUTPUT, error_type=None, ok=True)
    (sent,) = fake.requests
    assert sent.method == "GET"
    assert str(sent.url) == f"{BASE}/fal-ai/flux-pro/requests/{RID}"


def test_200_text_body_is_kept_as_text(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(200, text="not json")
    answer = client.result(RESPONSE_URL)
    assert (answer.ok, answer.body) == (True, "not json")


@pytest.mark.parametrize(
    ("code", "headers", "body", "error_type"),
    [
        (422, {"x-fal-request-id": "x"}, VALIDATION, "content_policy_violation"),
        (422, {}, {"detail": "Invalid image"}, None),
        (499, {}, {"detail": "cancelled", "error_type": "client_cancelled"}, "client_cancelled"),
        (499, {}, "", None),
        (
            500,
            {"X-Fal-Error-Type": "runner_server_error"},
            {"detail": "crash"},
            "runner_server_error",
        ),
        (500, {"x-fal-request-id": "x"}, {"detail": "model raised"}, None),
        (503, {}, {"detail": "x", "error_type": "runner_disconnected"}, "runner_disconnected"),
        (
            504,
            {"X-Fal-Request-Timeout-Type": "user"},
            {"detail": "Request timed out", "error_type": "request_timeout"},
            "request_timeout",
        ),
        (
            400,
            {"x-fal-request-id": "x"},
            {
                "detail": [
                    {"loc": ["body"], "msg": "upstream failed", "type": "downstream_service_error"}
                ]
            },
            "downstream_service_error",
        ),
        (400, {}, {"detail": "bad timeout header", "error_type": "bad_request"}, "bad_request"),
    ],
)
def test_the_models_own_failures_are_final_answers(
    client: UpstreamClient,
    fake: FakeUpstream,
    code: int,
    headers: dict[str, str],
    body: object,
    error_type: str | None,
) -> None:
    if isinstance(body, str):
        fake.reply(code, text=body, headers=headers)
    else:
        fake.reply(code, json=body, headers=headers)
    answer = client.result(RESPONSE_URL)
    assert answer.ok is False
    assert answer.http_status == code
    assert answer.body == body
    assert answer.error_type == error_type
    assert len(fake.requests) == 1


def test_retryable_header_is_reported(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(422, json=VALIDATION, headers={"X-Fal-Retryable": "true"})
    assert client.result(RESPONSE_URL).retryable is True
    fake.reply(422, json=VALIDATION, headers={"X-Fal-Retryable": "false"})
    assert client.result(RESPONSE_URL).retryable is False
    fake.reply(422, json=VALIDATION)
    assert client.result(RESPONSE_URL).retryable is None


def test_400_still_in_progress_is_transient(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(
        400, json={"detail": "Request is still in progress"}, headers={"x-fal-request-id": "x"}
    )
    with pytest.raises(UpstreamTransient, match="still in progress") as caught:
        client.result(RESPONSE_URL)
    assert caught.value.http_status == 400


def test_404_is_not_found(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(404, json={"detail": "Request not found"}, headers={"x-fal-request-id": "x"})
    with pytest.raises(UpstreamNotFound):
        client.result(RESPONSE_URL)


@pytest.mark.parametrize(
    ("code", "headers", "body", "expected"),
    [
        (502, {}, "<html><center>nginx</center></html>", UpstreamTransient),
        (503, {}, "<html>nginx</html>", UpstreamTransient),
        (500, {}, {"detail": "relay trouble"}, UpstreamTransient),  # no fal marker: not final
        (429, {"Retry-After": "4"}, {"detail": "slow"}, UpstreamTransient),
        (408, {"x-fal-request-id": "x"}, {"detail": "slow"}, UpstreamTransient),
        (401, {"x-fal-request-id": "x"}, {"detail": "Unauthorized"}, UpstreamRejected),
        (403, {}, {"detail": "Forbidden", "error_type": "forbidden"}, UpstreamRejected),
        (410, {}, {"detail": "gone"}, UpstreamRejected),
    ],
)
def test_non_final_errors_raise(
    client: UpstreamClient,
    fake: FakeUpstream,
    code: int,
    headers: dict[str, str],
    body: object,
    expected: type[UpstreamError],
) -> None:
    if isinstance(body, str):
        fake.reply(code, text=body, headers=headers)
    else:
        fake.reply(code, json=body, headers=headers)
    with pytest.raises(expected) as caught:
        client.result(RESPONSE_URL)
    assert type(caught.value) is expected
    assert caught.value.op == "result"


def test_429_carries_retry_after(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(429, json={"detail": "slow"}, headers={"Retry-After": "4"})
    with pytest.raises(UpstreamTransient) as caught:
        client.result(RESPONSE_URL)
    assert caught.value.retry_after == 4.0
