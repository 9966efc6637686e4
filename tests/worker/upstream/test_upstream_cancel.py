import pytest

from tests.worker.upstream.fakes import BASE, FakeUpstream
from worker.upstream import (
    UpstreamCancelOutcome,
    UpstreamClient,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)

CANCEL_URL = "https://queue.fal.run/fal-ai/flux-pro/requests/r-0003/cancel"


@pytest.mark.parametrize(
    ("code", "body", "outcome"),
    [
        (202, {"status": "CANCELLATION_REQUESTED"}, UpstreamCancelOutcome.CANCELLATION_REQUESTED),
        (400, {"status": "ALREADY_COMPLETED"}, UpstreamCancelOutcome.ALREADY_COMPLETED),
        (404, {"status": "NOT_FOUND"}, UpstreamCancelOutcome.NOT_FOUND),
        (200, {"status": "OK"}, UpstreamCancelOutcome.OK),
        # a 2xx without a readable status: the code says what happened
        (202, None, UpstreamCancelOutcome.CANCELLATION_REQUESTED),
        (200, {"detail": "removed"}, UpstreamCancelOutcome.OK),
        (204, None, UpstreamCancelOutcome.OK),
    ],
)
def test_outcomes(
    client: UpstreamClient,
    fake: FakeUpstream,
    code: int,
    body: object,
    outcome: UpstreamCancelOutcome,
) -> None:
    fake.reply(code, json=body)
    assert client.cancel(CANCEL_URL) is outcome
    (sent,) = fake.requests
    assert sent.method == "PUT"
    assert str(sent.url) == f"{BASE}/fal-ai/flux-pro/requests/r-0003/cancel"


@pytest.mark.parametrize(
    ("code", "headers", "body", "expected"),
    [
        (404, {}, {"detail": "Not Found"}, UpstreamNotFound),
        (400, {}, {"detail": "bad request"}, UpstreamRejected),
        (401, {}, {"detail": "Unauthorized"}, UpstreamRejected),
        (500, {"x-fal-request-id": "x"}, {"detail": "boom"}, UpstreamTransient),
        (502, {}, "<html>nginx</html>", UpstreamTransient),
        (429, {"Retry-After": "1"}, {"detail": "slow"}, UpstreamTransient),
    ],
)
def test_errors(
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
        client.cancel(CANCEL_URL)
    assert type(caught.value) is expected
    assert len(fake.requests) == 1
