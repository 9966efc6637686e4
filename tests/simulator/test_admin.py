"""The /_sim admin API over HTTP, and the in-process equivalents it mirrors."""

import httpx

from tests.simulator.helpers import MODEL, SimClient


def test_config_get_and_post(api: SimClient) -> None:
    config = api.http.get("/_sim/config").json()
    assert (config["run_time"], config["capacity"], config["validate"]) == (10.0, 1, "submit")
    changed = api.http.post(
        "/_sim/config",
        json={"run_time": 0.5, "capacity": 3, "validate": "result", "auth": "Key s3cret"},
    )
    assert changed.status_code == 200
    assert changed.json()["auth"] == "<set>"  # never echoed
    assert "s3cret" not in changed.text
    assert (api.sim.config.run_time, api.sim.config.capacity) == (0.5, 3)
    assert api.sim.config.auth == "Key s3cret"


def test_config_rejects_unknown_fields_and_bad_values(api: SimClient) -> None:
    for body in ({"seed": 3}, {"colour": "red"}, {"capacity": -1}, {"validate": "never"}):
        response = api.http.post("/_sim/config", json=body)
        assert response.status_code == 422, body
    assert api.http.post("/_sim/config", content=b"[1]").status_code == 400
    assert api.http.post("/_sim/config", content=b"{").status_code == 400


def test_faults_post_list_and_delete(api: SimClient) -> None:
    rule = {"op": "submit", "kind": "retry_after", "retry_after": 3, "times": 2}
    created = api.http.post("/_sim/faults", json=rule)
    assert created.status_code == 201
    assert created.json()["kind"] == "retry_after"
    [listed] = api.http.get("/_sim/faults").json()
    assert (listed["op"], listed["remaining"]) == ("submit", 2)
    assert api.http.post(f"/{MODEL}", json={"prompt": "x"}).headers["retry-after"] == "3"
    assert api.http.get("/_sim/faults").json()[0]["remaining"] == 1
    assert api.http.delete("/_sim/faults").status_code == 200
    assert api.http.get("/_sim/faults").json() == []
    bad = api.http.post("/_sim/faults", json={"kind": "explode"})
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["kind"]


def test_requests_submits_and_stats(api: SimClient) -> None:
    handle = api.submit("info please")
    api.status(handle)
    api.status(handle)
    info = api.http.get(f"/_sim/requests/{handle['request_id']}").json()
    assert info["request_id"] == handle["request_id"]
    assert info["endpoint"] == MODEL
    assert (info["state"], info["outcome"]) == ("IN_PROGRESS", None)
    assert info["calls"] == {"submit": 1, "status": 2, "result": 0, "cancel": 0}
    # Every call with the caller's address and time: a multi-host test tells hosts apart by it.
    log = info["call_log"]
    assert [entry["op"] for entry in log] == ["submit", "status", "status"]
    assert {entry["caller"] for entry in log} == {"127.0.0.1"}
    assert log[0]["at"] == info["submitted_at"]
    assert info["submitted_at"] == info["started_at"]
    assert info["completed_at"] is None
    assert info["cancel_requested"] is False
    assert isinstance(info["submitted_at"], float)
    assert info["submitted_at"] > 1.6e9
    api.advance(10.0)
    info = api.http.get(f"/_sim/requests/{handle['request_id']}").json()
    assert (info["state"], info["outcome"]) == ("COMPLETED", "ok")
    assert info["completed_at"] - info["started_at"] == 10.0
    assert api.http.get("/_sim/requests/unknown").status_code == 404
    [record] = api.http.get("/_sim/submits").json()
    assert set(record) == {
        "request_id",
        "endpoint",
        "body",
        "auth_scheme",
        "auth_sha256",
        "status_code",
        "at",
        "priority",
        "tags",
        "caller",
    }
    assert record["caller"] == "127.0.0.1"
    assert record["body"] == {"prompt": "info please"}
    assert (record["priority"], record["tags"]) == (None, None)  # no such headers were sent
    stats = api.http.get("/_sim/stats").json()
    assert stats == {
        "calls": {"submit": 1, "status": 2, "result": 0, "cancel": 0},
        "responses": {"submit:200": 1, "status:202": 2},
        "jobs": {"in_queue": 0, "in_progress": 0, "completed": 1},
        "webhooks": {},
    }


def test_reset_forgets_jobs_counters_and_faults_but_keeps_config(api: SimClient) -> None:
    api.sim.configure(run_time=3.0)
    handle = api.submit()
    api.http.post("/_sim/faults", json={"kind": "http", "op": "status"})
    assert api.http.post("/_sim/reset").status_code == 200
    assert api.status(handle).status_code == 404
    assert api.sim.submits() == []
    assert api.sim.faults() == []
    assert api.sim.stats()["calls"]["submit"] == 0
    assert api.sim.config.run_time == 3.0


def test_health_and_admin_need_no_auth(api: SimClient) -> None:
    api.sim.configure(auth="Key x")
    assert api.http.get("/_sim/health").json() == {"ok": True}
    assert api.http.get("/_sim/stats").status_code == 200


def test_admin_works_from_a_separate_client(api: SimClient) -> None:
    with httpx.Client(base_url=api.server.url) as other:
        other.post("/_sim/config", json={"capacity": 5})
    assert api.sim.config.capacity == 5
