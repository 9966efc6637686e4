"""Prometheus ``/metrics``: requests by route template and code, generations by status."""

import re

from fastapi.testclient import TestClient

from tests.api.support import MODEL, auth


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
