"""Prometheus ``/metrics``: requests by route template and code, generations by status."""

import random
import re
import string

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr, ValidationError

from api.app import create_app
from api.metrics import METHODS, OTHER_METHOD
from models.settings import Settings
from tests.api.support import MODEL, RecordingPublisher, auth


def _value(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.rindex("} ")]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_requests_by_route_template_and_generations_by_status(
    client: TestClient, key: str
) -> None:
    before = client.get("/metrics").text
    rid = client.post(f"/{MODEL}", json={"prompt": "x"}, headers=auth(key)).json()["request_id"]
    client.get(f"/fal-ai/flux-pro/requests/{rid}/status", headers=auth(key))
    client.get(f"/v1/generations/{rid}", headers=auth("gq_wrong"))
    after = client.get("/metrics")
    assert after.status_code == 200
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text
    submit = {"method": "POST", "route": f"/{MODEL}", "code": "200"}
    assert (
        _value(text, "genqueue_http_requests_total", **submit)
        == _value(before, "genqueue_http_requests_total", **submit) + 1
    )
    status_route = "/{owner}/{app}/requests/{request_id}/status"
    assert _value(text, "genqueue_http_requests_total", route=status_route, code="202") >= 1
    assert (
        _value(
            text,
            "genqueue_http_requests_total",
            route="/v1/generations/{generation_id}",
            code="401",
        )
        >= 1
    )
    assert _value(text, "genqueue_http_request_duration_seconds_count", route=status_route) >= 1
    assert _value(text, "genqueue_generations", status="pending") >= 1
    assert _value(text, "genqueue_database_up") == 1
    assert f"/requests/{rid}" not in text  # templates, never raw paths


def _series(text: str) -> set[str]:
    """Every series of the exposition, without its value."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines() if not line.startswith("#")}


def _junk(client: TestClient, rng: random.Random, count: int) -> None:
    letters = string.ascii_uppercase
    for _ in range(count):
        method = rng.choice(["GET", "POST", "".join(rng.choices(letters, k=rng.randint(3, 12)))])
        path = "/" + "/".join(
            "".join(rng.choices(string.ascii_lowercase + string.digits, k=rng.randint(1, 10)))
            for _ in range(rng.randint(1, 4))
        )
        client.request(method, path)


def test_junk_methods_and_paths_do_not_grow_the_exposition(client: TestClient) -> None:
    """Issue 19: 3,000 requests with random methods and paths grew /metrics to megabytes (a
    series per method). Label values are now bounded: the series after 3,000 such requests are
    the series after the first 300."""
    rng = random.Random(19)
    _junk(client, rng, 300)
    client.get("/metrics")  # its own series appear after its first answer: not the junk's
    early = client.get("/metrics").text
    _junk(client, rng, 2700)
    late = client.get("/metrics").text
    assert _series(late) == _series(early)
    # The bound holds the whole session's exposition: every route the other API tests served
    # is in it too (the media route's GET/HEAD × 200/206/304/404/416/422 added ~6 KiB).
    assert len(late.encode()) < 96 * 1024, len(late.encode())
    methods = set(re.findall(r'method="([^"]*)"', late))
    assert methods <= {*METHODS, OTHER_METHOD}
    assert OTHER_METHOD in methods


def test_metrics_token_is_required_when_set(
    api_settings: Settings, recorder: RecordingPublisher
) -> None:
    settings = api_settings.model_copy(update={"metrics_token": SecretStr("scrape-me-0123456789")})
    with TestClient(create_app(settings, publisher=recorder)) as other:
        assert other.get("/metrics").status_code == 401
        wrong = other.get("/metrics", headers={"Authorization": "Bearer scrape-you-0123456789"})
        assert wrong.status_code == 401
        assert "GENQUEUE_METRICS_TOKEN" in wrong.json()["detail"]
        right = other.get("/metrics", headers={"Authorization": "Bearer scrape-me-0123456789"})
        assert right.status_code == 200
        assert "genqueue_http_requests_total" in right.text
    with pytest.raises(ValidationError, match="at least 16 characters"):
        Settings(metrics_token="short")
