import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from tests.worker.upstream.fakes import BASE, KEY, FakeUpstream
from worker.upstream import (
    SubmitAmbiguous,
    UpstreamClient,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)

ENDPOINT = "fal-ai/flux-pro/kontext/text-to-image"
RID = "acf05732-7cb3-445b-9f39-fdaeccb1d730"
FAL_REQ = f"https://queue.fal.run/fal-ai/flux-pro/requests/{RID}"
OUR_REQ = f"{BASE}/fal-ai/flux-pro/requests/{RID}"
PAYLOAD = {"prompt": "a tiger eye", "aspect_ratio": "1:1"}
HANDLE: dict[str, object] = {
    "status": "IN_QUEUE",
    "request_id": RID,
    "response_url": FAL_REQ,
    "status_url": f"{FAL_REQ}/status",
    "cancel_url": f"{FAL_REQ}/cancel",
    "logs": None,
    "metrics": {},
    "queue_position": 0,
}


def test_200_gives_a_handle_with_urls_on_the_configured_base(
    client: UpstreamClient, fake: FakeUpstream
) -> None:
    fake.reply(200, json=HANDLE)
    handle = client.submit(ENDPOINT, PAYLOAD)

    assert handle.request_id == RID
    assert handle.status_url == f"{OUR_REQ}/status"
    assert handle.response_url == OUR_REQ
    assert handle.cancel_url == f"{OUR_REQ}/cancel"
    assert handle.queue_position == 0
    assert handle.raw == HANDLE  # upstream's answer as sent

    (sent,) = fake.requests
    assert sent.method == "POST"
    assert str(sent.url) == f"{BASE}/{ENDPOINT}"
    assert json.loads(sent.content) == PAYLOAD
    assert sent.headers["content-type"] == "application/json"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.headers["user-agent"] == "genqueue/0.1"
    assert "x-fal-request-timeout" not in sent.headers


def test_start_timeout_and_webhook_are_sent(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(200, json=HANDLE)
    client.submit(ENDPOINT, PAYLOAD, start_timeout=30, webhook_url="https://hooks.example/fal?j=1")
    assert fake.last.headers["x-fal-request-timeout"] == "30.0"
    assert fake.last.url.params["fal_webhook"] == "https://hooks.example/fal?j=1"
    assert b"fal_webhook=https%3A%2F%2Fhooks.example%2Ffal%3Fj%3D1" in fake.last.url.raw_path


def test_handle_without_urls_gets_the_documented_ones(
    client: UpstreamClient, fake: FakeUpstream
) -> None:
    fake.reply(200, json={"request_id": RID, "status": "IN_QUEUE"})
    handle = client.submit(ENDPOINT, PAYLOAD)
    assert (handle.status_url, handle.response_url, handle.cancel_url) == (
        f"{OUR_REQ}/status",
        OUR_REQ,
        f"{OUR_REQ}/cancel",
    )
    assert handle.queue_position is None


@pytest.mark.parametrize(
    "reply",
    [
        {"json": {"status": "IN_QUEUE", "status_url": f"{FAL_REQ}/status"}},  # no request_id
        {"json": {"request_id": "", "status": "IN_QUEUE"}},
        {"json": {"request_id": 42}},
        {"json": [HANDLE]},
        {"text": "<html>ok</html>"},
        {"text": ""},
    ],
)
def test_200_without_a_usable_handle_is_ambiguous(
    client: UpstreamClient, fake: FakeUpstream, reply: dict[str, Any]
) -> None:
    fake.reply(200, **reply)
    with pytest.raises(SubmitAmbiguous) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert caught.value.http_status == 200
    assert caught.value.op == "submit"
    assert len(fake.requests) == 1


def test_422_detail_list_is_rejected_with_its_detail_kept(
    client: UpstreamClient, fake: FakeUpstream
) -> None:
    detail = [{"loc": ["body", "prompt"], "msg": "Field required", "type": "missing", "input": {}}]
    fake.reply(422, json={"detail": detail}, headers={"x-fal-billable-units": "0"})
    with pytest.raises(UpstreamRejected) as caught:
        client.submit(ENDPOINT, {})
    error = caught.value
    assert not isinstance(error, UpstreamTransient)
    assert str(error) == "submit: HTTP 422 from upstream: prompt: Field required"
    assert error.message == str(error)
    assert (error.http_status, error.body, error.error_type) == (422, {"detail": detail}, "missing")


def test_422_detail_string(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(422, json={"detail": "Unprocessable: prompt too long"})
    with pytest.raises(UpstreamRejected, match="prompt too long") as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert caught.value.error_type is None


def test_422_with_many_items_is_summarized(client: UpstreamClient, fake: FakeUpstream) -> None:
    detail = [
        {"loc": ["body", f"f{i}"], "msg": "Input should be less than or equal to 20"}
        for i in range(5)
    ]
    fake.reply(422, json={"detail": detail})
    with pytest.raises(UpstreamRejected) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert str(caught.value).endswith("f2: Input should be less than or equal to 20; (+2 more)")


@pytest.mark.parametrize("code", [400, 401, 403, 404, 413])
def test_other_4xx_are_rejected(client: UpstreamClient, fake: FakeUpstream, code: int) -> None:
    fake.reply(code, json={"detail": "nope"})
    with pytest.raises(UpstreamRejected) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert not isinstance(caught.value, UpstreamNotFound)  # an unknown model is not a request
    assert caught.value.http_status == code


@pytest.mark.parametrize("code", [408, 409, 429])
def test_retry_later_4xx_are_transient_not_ambiguous(
    client: UpstreamClient, fake: FakeUpstream, code: int
) -> None:
    fake.reply(code, json={"detail": "slow down"}, headers={"Retry-After": "7"})
    with pytest.raises(UpstreamTransient) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert not isinstance(caught.value, SubmitAmbiguous)
    assert caught.value.retry_after == 7.0


def test_429_retry_after_http_date(client: UpstreamClient, fake: FakeUpstream) -> None:
    when = datetime.now(UTC) + timedelta(seconds=45)
    fake.reply(429, json={"detail": "limit"}, headers={"Retry-After": format_datetime(when, True)})
    with pytest.raises(UpstreamTransient) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert caught.value.retry_after is not None
    assert 40 <= caught.value.retry_after <= 46


def test_429_without_retry_after(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(429, json={"detail": "limit"})
    with pytest.raises(UpstreamTransient) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("code", "headers", "body"),
    [
        (500, {"x-fal-request-id": "x"}, {"detail": "boom", "error_type": "internal_error"}),
        (500, {}, {"detail": "relay error"}),
        (502, {}, "<html><body><center>502 Bad Gateway</center><hr>nginx</body></html>"),
        (
            502,
            {"x-fal-request-id": "x"},
            {"detail": "bad", "error_type": "runner_server_error"},
        ),
        (503, {"Retry-After": "3"}, {"detail": "unavailable"}),
        (503, {}, "<html>503 Service Temporarily Unavailable nginx/1.25</html>"),
    ],
)
def test_5xx_are_transient_not_ambiguous(
    client: UpstreamClient, fake: FakeUpstream, code: int, headers: dict[str, str], body: object
) -> None:
    if isinstance(body, str):
        fake.reply(code, text=body, headers=headers)
    else:
        fake.reply(code, json=body, headers=headers)
    with pytest.raises(UpstreamTransient) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert not isinstance(caught.value, SubmitAmbiguous)
    assert caught.value.http_status == code
    assert len(fake.requests) == 1


def test_ingress_error_is_named_in_the_message(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(502, text="<html><center>nginx</center></html>")
    with pytest.raises(UpstreamTransient, match=r"submit: HTTP 502 from upstream: ingress error"):
        client.submit(ENDPOINT, PAYLOAD)


def test_gateway_timeout_is_ambiguous(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(504, text="<html>504 Gateway Time-out nginx</html>")
    with pytest.raises(SubmitAmbiguous) as caught:
        client.submit(ENDPOINT, PAYLOAD)
    assert caught.value.http_status == 504


def test_user_start_timeout_504_is_rejected(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(
        504,
        json={"detail": "Request timed out", "error_type": "request_timeout"},
        headers={"X-Fal-Request-Timeout-Type": "user", "x-fal-request-id": "x"},
    )
    with pytest.raises(UpstreamRejected, match="start timeout") as caught:
        client.submit(ENDPOINT, PAYLOAD, start_timeout=5)
    assert caught.value.error_type == "request_timeout"


def test_redirect_is_rejected_not_followed(client: UpstreamClient, fake: FakeUpstream) -> None:
    fake.reply(301, headers={"Location": "https://elsewhere.example/x"})
    with pytest.raises(UpstreamRejected, match="redirect"):
        client.submit(ENDPOINT, PAYLOAD)
    assert len(fake.requests) == 1


@pytest.mark.parametrize("endpoint_id", ["fal-ai", "", "fal-ai/../x", "fal ai/flux"])
def test_invalid_endpoint_id_is_rejected_before_sending(
    client: UpstreamClient, fake: FakeUpstream, endpoint_id: str
) -> None:
    with pytest.raises(UpstreamRejected, match="invalid endpoint id"):
        client.submit(endpoint_id, PAYLOAD)
    assert fake.requests == []


@pytest.mark.parametrize("start_timeout", [0, 0.5, 1.0, -3, float("nan"), float("inf")])
def test_start_timeout_must_exceed_one_second(
    client: UpstreamClient, fake: FakeUpstream, start_timeout: float
) -> None:
    with pytest.raises(UpstreamRejected, match="start_timeout"):
        client.submit(ENDPOINT, PAYLOAD, start_timeout=start_timeout)
    assert fake.requests == []


@pytest.mark.parametrize(
    ("key", "scheme", "expected"),
    [
        ("plain-key", "Key", "Key plain-key"),
        ("plain-key", "key", "Key plain-key"),
        ("relay-token", "Bearer", "Bearer relay-token"),
        ("relay-token", "bearer", "Bearer relay-token"),
    ],
)
def test_auth_header_schemes(key: str, scheme: str, expected: str) -> None:
    fake = FakeUpstream()
    fake.reply(200, json=HANDLE)
    with UpstreamClient(
        base_url=BASE, key=key, auth_scheme=scheme, transport=httpx.MockTransport(fake)
    ) as client:
        client.submit(ENDPOINT, PAYLOAD)
    assert fake.last.headers["authorization"] == expected


def test_no_key_sends_no_auth_header() -> None:
    fake = FakeUpstream()
    fake.reply(200, json=HANDLE)
    with UpstreamClient(base_url=BASE, key=None, transport=httpx.MockTransport(fake)) as client:
        client.submit(ENDPOINT, PAYLOAD)
    assert "authorization" not in fake.last.headers


def test_unknown_auth_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="auth_scheme"):
        UpstreamClient(base_url=BASE, key="k", auth_scheme="Basic")
