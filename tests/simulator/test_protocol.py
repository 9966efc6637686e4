"""Submit, status and result over real HTTP: codes, bodies, headers, URL rules."""

import re
import uuid

import pytest

from tests.simulator.helpers import MODEL, SEED_BODY, SEED_PROMPT, SimClient

SEED_RESPONSE: dict[str, object] = {
    "status": "IN_QUEUE",
    "request_id": "acf05732-7cb3-445b-9f39-fdaeccb1d730",
    "response_url": "https://queue.fal.run/fal-ai/flux-pro/requests/acf05732-7cb3-445b-9f39-fdaeccb1d730",
    "status_url": "https://queue.fal.run/fal-ai/flux-pro/requests/acf05732-7cb3-445b-9f39-fdaeccb1d730/status",
    "cancel_url": "https://queue.fal.run/fal-ai/flux-pro/requests/acf05732-7cb3-445b-9f39-fdaeccb1d730/cancel",
    "logs": None,
    "metrics": {},
    "queue_position": 0,
}


def _normalise(handle: dict[str, object], request_id: str, base: str) -> dict[str, object]:
    """Replace this run's id and host with the seed's."""
    out: dict[str, object] = {}
    for key, value in handle.items():
        if isinstance(value, str):
            value = value.replace(request_id, "acf05732-7cb3-445b-9f39-fdaeccb1d730")
            value = value.replace(base, "https://queue.fal.run")
        out[key] = value
    return out


def test_seed_request_is_accepted_with_the_seed_response_shape(api: SimClient) -> None:
    response = api.http.post(
        f"/{MODEL}",
        json=SEED_BODY,
        headers={"Authorization": "Bearer YOUR_API_KEY", "Content-Type": "application/json"},
    )
    assert response.status_code == 200
    handle = response.json()
    assert list(handle) == list(SEED_RESPONSE)
    assert uuid.UUID(handle["request_id"]).version == 4
    assert _normalise(handle, handle["request_id"], api.server.url) == SEED_RESPONSE
    assert response.headers["x-fal-request-id"] == handle["request_id"]
    [record] = api.sim.submits()
    assert record["body"] == SEED_BODY
    assert record["status_code"] == 200
    assert record["auth_scheme"] == "Bearer"
    assert record["endpoint"] == MODEL
    assert "YOUR_API_KEY" not in str(record)


def test_urls_use_owner_and_app_only(api: SimClient) -> None:
    for endpoint in (MODEL, "fal-ai/flux-pro/kontext/max/text-to-image", "fal-ai/flux-pro/kontext"):
        handle = api.submit(endpoint=endpoint, image_url="https://example.com/in.png")
        root = f"{api.server.url}/fal-ai/flux-pro/requests/{handle['request_id']}"
        assert handle["response_url"] == root
        assert handle["status_url"] == root + "/status"
        assert handle["cancel_url"] == root + "/cancel"


def test_namespaced_apps_keep_three_segments(api: SimClient) -> None:
    handle = api.submit(endpoint="workflows/someone/pipeline/run")
    assert f"/workflows/someone/pipeline/requests/{handle['request_id']}" in handle["status_url"]
    assert api.status(handle).status_code == 202


def test_public_url_overrides_the_request_host(api: SimClient) -> None:
    api.sim.configure(public_url="https://queue.example.test")
    handle = api.submit()
    assert handle["status_url"].startswith("https://queue.example.test/fal-ai/flux-pro/requests/")


def test_webhook_submit_adds_gateway_request_id(api: SimClient) -> None:
    response = api.http.post(
        f"/{MODEL}", params={"fal_webhook": "http://127.0.0.1:9/hook"}, json={"prompt": "x"}
    )
    handle = response.json()
    assert handle["gateway_request_id"] == handle["request_id"]
    assert "gateway_request_id" not in api.submit()


def test_status_codes_follow_the_state(api: SimClient) -> None:
    handle = api.submit()  # capacity 1, 10 s per job: starts at once
    queued = api.submit()
    running = api.status(handle)
    assert running.status_code == 202
    assert running.json()["status"] == "IN_PROGRESS"
    assert "queue_position" not in running.json()
    assert running.json()["logs"] is None
    assert running.json()["metrics"] == {}
    waiting = api.status(queued)
    assert waiting.status_code == 202
    assert waiting.json()["status"] == "IN_QUEUE"
    assert waiting.json()["queue_position"] == 0
    assert waiting.headers["x-fal-request-id"] == queued["request_id"]
    api.advance(10.0)
    done = api.status(handle)
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "COMPLETED"
    assert body["metrics"] == {"inference_time": 10.0}
    assert "error" not in body
    assert body["logs"] is None
    assert api.status(queued).json()["status"] == "IN_PROGRESS"


@pytest.mark.parametrize("value", ["1", "true", "True"])
def test_logs_are_a_list_when_asked(api: SimClient, value: str) -> None:
    handle = api.submit()
    assert api.status(handle, logs=value).json()["logs"][0]["level"] == "INFO"
    api.advance(10.0)
    entries = api.status(handle, logs=value).json()["logs"]
    assert [e["message"][:8] for e in entries] == ["Generati", "Finished"]
    assert set(entries[0]) == {"message", "level", "source", "timestamp", "labels"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}", entries[0]["timestamp"])


@pytest.mark.parametrize("value", ["0", "false", "False"])
def test_logs_are_null_unless_asked(api: SimClient, value: str) -> None:
    handle = api.submit()
    assert api.status(handle, logs=value).json()["logs"] is None


def test_queued_job_logs_are_an_empty_list(api: SimClient) -> None:
    api.submit()
    queued = api.submit()
    assert api.status(queued, logs=1).json()["logs"] == []


def test_trailing_slashes_and_unknown_fal_headers_are_accepted(api: SimClient) -> None:
    response = api.http.post(
        f"/{MODEL}/",
        json={"prompt": "x"},
        headers={"X-Fal-Queue-Priority": "low", "X-Fal-Whatever": "1", "X-Fal-Store-IO": "0"},
    )
    handle = response.json()
    assert api.http.get(handle["status_url"] + "/").status_code == 202
    assert api.http.get(handle["response_url"] + "/").status_code == 400
    api.advance(10.0)
    assert api.http.get(handle["response_url"] + "/").status_code == 200
    assert api.http.put(handle["cancel_url"] + "/").status_code == 400


def test_result_while_pending_is_400_then_the_output(api: SimClient) -> None:
    handle = api.submit(SEED_PROMPT, seed=1234, num_images=2, output_format="png")
    pending = api.result(handle)
    assert pending.status_code == 400
    assert pending.json() == {"detail": "Request is still in progress"}
    api.advance(10.0)
    response = api.result(handle)
    assert response.status_code == 200
    assert response.headers["x-fal-request-id"] == handle["request_id"]
    body = response.json()
    assert list(body) == ["images", "timings", "seed", "has_nsfw_concepts", "prompt"]
    assert body["seed"] == 1234
    assert body["prompt"] == SEED_PROMPT
    assert body["has_nsfw_concepts"] == [False, False]
    assert body["timings"] == {"inference": 10.0}
    assert [image["url"] for image in body["images"]] == [
        f"{api.server.url}/files/{handle['request_id']}/{index}.png" for index in range(2)
    ]
    assert body["images"][0] == {
        "url": body["images"][0]["url"],
        "width": 1024,
        "height": 1024,
        "content_type": "image/png",
    }


def test_random_seed_is_an_int_when_not_given(api: SimClient) -> None:
    handle = api.submit()
    api.advance(10.0)
    seed = api.result(handle).json()["seed"]
    assert isinstance(seed, int)
    assert 0 < seed < 2**31


def test_unknown_ids_are_404(api: SimClient) -> None:
    root = f"/fal-ai/flux-pro/requests/{uuid.uuid4()}"
    assert api.http.get(root + "/status").status_code == 404
    assert api.http.get(root + "/status").json() == {"detail": "Request not found"}
    assert api.http.get(root).json() == {"detail": "Request not found"}
    assert api.http.get(root + "/status/stream").status_code == 404
    cancel = api.http.put(root + "/cancel")
    assert (cancel.status_code, cancel.json()) == (404, {"status": "NOT_FOUND"})


def test_a_request_is_not_found_under_another_app(api: SimClient) -> None:
    handle = api.submit()
    other = handle["status_url"].replace("/fal-ai/flux-pro/", "/fal-ai/other/")
    assert api.http.get(other).status_code == 404


def test_endpoint_path_in_status_url_is_rejected(api: SimClient) -> None:
    handle = api.submit()
    wrong = f"/{MODEL}/requests/{handle['request_id']}/status"
    assert api.http.get(wrong).status_code in (404, 405)


def test_result_expires_after_the_ttl(api: SimClient) -> None:
    api.sim.configure(run_time=1.0, result_ttl=60.0)
    handle = api.submit()
    api.advance(1.0 + 60.0)
    assert api.result(handle).status_code == 200
    api.advance(0.5)
    gone = api.result(handle)
    assert (gone.status_code, gone.json()) == (404, {"detail": "Request not found"})
    assert api.status(handle).json()["status"] == "COMPLETED"


def test_auth_is_enforced_except_for_files_and_admin(api: SimClient) -> None:
    api.sim.configure(auth="Key abc", run_time=1.0)
    http = api.http
    for headers in ({}, {"Authorization": "Key abd"}, {"Authorization": "Bearer abc"}):
        denied = http.post(f"/{MODEL}", json={"prompt": "x"}, headers=headers)
        assert (denied.status_code, denied.json()) == (401, {"detail": "Unauthorized"})
    good = {"Authorization": "Key abc"}
    handle = http.post(f"/{MODEL}", json={"prompt": "x"}, headers=good).json()
    assert http.get(handle["status_url"]).status_code == 401
    assert http.get(handle["response_url"]).status_code == 401
    assert http.put(handle["cancel_url"]).status_code == 401
    api.advance(1.0)
    assert http.get(handle["status_url"], headers=good).status_code == 200
    result = http.get(handle["response_url"], headers=good).json()
    assert http.get(result["images"][0]["url"]).status_code == 200
    assert http.get("/_sim/stats").status_code == 200
    [record] = api.sim.submits()  # 401s are not submits
    assert record["auth_scheme"] == "Key"
    assert api.sim.stats()["responses"]["submit:401"] == 3


def test_auth_fingerprint_is_sha256_of_the_header(api: SimClient) -> None:
    import hashlib

    api.http.post(f"/{MODEL}", json={"prompt": "x"}, headers={"Authorization": "Key k1:s1"})
    api.http.post(f"/{MODEL}", json={"prompt": "x"})
    first, second = api.sim.submits()
    assert first["auth_sha256"] == hashlib.sha256(b"Key k1:s1").hexdigest()
    assert first["auth_scheme"] == "Key"
    assert (second["auth_scheme"], second["auth_sha256"]) == (None, None)


def test_unrouted_methods_are_405(api: SimClient) -> None:
    assert api.http.get(f"/{MODEL}").status_code == 405
    assert api.http.delete("/fal-ai/flux-pro/requests/x/status").status_code == 405
    assert api.http.get("/only-one-segment").status_code == 404


def test_every_call_is_logged_without_the_authorization_value(
    api: SimClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("INFO", logger="simulator"):
        handle = api.http.post(
            f"/{MODEL}", json={"prompt": "x"}, headers={"Authorization": "Key top-secret-9"}
        ).json()
        api.status(handle)
        api.http.get("/_sim/stats")
    lines = [record.getMessage() for record in caplog.records if record.name == "simulator.http"]
    assert f"POST /{MODEL} 200" in lines
    assert any(line.startswith("GET /fal-ai/flux-pro/requests/") for line in lines)
    assert "top-secret-9" not in caplog.text
