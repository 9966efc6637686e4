"""The official fal-client (1.0.x) works against the simulator (UPSTREAM.md §14)."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.simulator.helpers import MODEL, SimClient

fal_client = pytest.importorskip("fal_client")


@pytest.fixture
def fal(api: SimClient, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import fal_client.client

    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", api.server.url + "/")
    api.sim.configure(auth="Key id:secret", run_time=0.2)
    client = fal_client.SyncClient(key="id:secret")
    yield client
    if "_client" in client.__dict__:  # a cached httpx.Client
        client.__dict__["_client"].close()


def test_submit_poll_and_get(fal: Any, api: SimClient) -> None:
    handle = fal.submit(MODEL, arguments={"prompt": "official client", "num_images": 2})
    queued = fal.status(MODEL, handle.request_id, with_logs=True)
    assert type(queued).__name__ == "InProgress"
    assert queued.logs
    api.advance(0.2)
    events = list(handle.iter_events(with_logs=True, interval=0.01))
    assert type(events[-1]).__name__ == "Completed"
    output = handle.get()
    assert output["prompt"] == "official client"
    assert len(output["images"]) == 2
    assert api.sim.submits()[0]["auth_scheme"] == "Key"


def test_queue_position_and_cancel_error(fal: Any, api: SimClient) -> None:
    fal.submit(MODEL, arguments={"prompt": "blocker"})
    handle = fal.submit(MODEL, arguments={"prompt": "victim"})
    status = fal.status(MODEL, handle.request_id)
    assert (type(status).__name__, status.position) == ("Queued", 0)
    handle.cancel()
    with pytest.raises(fal_client.client.FalClientHTTPError) as caught:
        handle.get()
    assert (caught.value.status_code, caught.value.error_type) == (499, "client_cancelled")
