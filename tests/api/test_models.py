"""``GET /v1/models[/{id}]``, and an operator's catalogue file: its models are served on both
surfaces, validated against their own schemas, priced, and documented."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from api.app import create_app
from models.catalogue import builtin_catalogue
from models.settings import Settings
from tests.api.conftest import MAX_BODY
from tests.api.support import MODEL, RecordingPublisher, auth

VIDEO = "fal-ai/kling-video/v2.1/master/text-to-video"
ADDED = "acme/upscaler/v2"
ADDED_ENTRY: dict[str, Any] = {
    "endpoint_id": ADDED,
    "summary": "Acme upscaler",
    "output_kind": "image",
    "unit_price": 0.25,
    "unit": "image",
    "expected_run_seconds": 40,
    "input_schema": {
        "title": "AcmeUpscalerInput",
        "type": "object",
        "additionalProperties": False,
        "required": ["image_url"],
        "properties": {
            "image_url": {"type": "string", "pattern": "^https://", "description": "image"},
            "scale": {"type": "integer", "enum": [2, 4], "default": 2, "description": "x"},
        },
    },
    "example": {"image_url": "https://example.com/a.png", "scale": 4},
}
FIELDS = {
    "endpoint_id",
    "summary",
    "output_kind",
    "unit_price",
    "unit",
    "expected_run_seconds",
    "input_schema",
    "example",
    "source",
}


def test_list_answers_every_model_in_catalogue_order(client: TestClient, key: str) -> None:
    answer = client.get("/v1/models", headers=auth(key))
    assert answer.status_code == 200, answer.text
    items = answer.json()["items"]
    assert [item["endpoint_id"] for item in items] == list(builtin_catalogue())
    assert all(set(item) == FIELDS for item in items)
    assert {item["output_kind"] for item in items} == {"image", "video", "audio"}


def test_one_model_carries_a_schema_a_form_can_be_built_from(client: TestClient, key: str) -> None:
    answer = client.get(f"/v1/models/{VIDEO}", headers=auth(key))
    assert answer.status_code == 200, answer.text
    model = answer.json()
    assert model["output_kind"] == "video"
    assert model["expected_run_seconds"] == 300
    assert model["unit_price"] == 0.28
    assert model["unit"] == "second"
    schema = model["input_schema"]
    Draft202012Validator.check_schema(schema)
    assert Draft202012Validator(schema).is_valid(model["example"])
    duration = schema["properties"]["duration"]
    assert (duration["type"], duration["enum"], duration["default"]) == ("string", ["5", "10"], "5")
    assert schema["properties"]["cfg_scale"]["maximum"] == 1
    seed = client.get(f"/v1/models/{MODEL}", headers=auth(key)).json()
    assert seed["example"]["aspect_ratio"] == "1:1"
    assert seed["input_schema"]["properties"]["guidance_scale"]["default"] == 3.5


def test_an_unknown_model_is_404_and_the_catalogue_needs_a_key(
    client: TestClient, key: str
) -> None:
    missing = client.get("/v1/models/fal-ai/nothing/here", headers=auth(key))
    assert missing.status_code == 404
    assert "fal-ai/nothing/here" in missing.json()["detail"]
    assert client.get("/v1/models").status_code == 401
    assert client.get(f"/v1/models/{MODEL}").status_code == 401


def test_new_models_are_submitted_and_refused_by_their_schema(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    bad = client.post(f"/{VIDEO}", json={"prompt": "a boat", "duration": "7"}, headers=auth(key))
    assert bad.status_code == 422
    assert [(e["loc"], e["type"]) for e in bad.json()["detail"]] == [
        (["body", "duration"], "literal_error")
    ]
    assert recorder.published == []
    good = client.post(f"/{VIDEO}", json={"prompt": "a boat", "duration": "10"}, headers=auth(key))
    assert good.status_code == 200, good.text
    record = client.get(f"/v1/generations/{good.json()['request_id']}", headers=auth(key)).json()
    assert record["model"] == VIDEO
    assert record["input"]["aspect_ratio"] == "16:9"
    assert record["estimated_cost"] == pytest.approx(0.28 * 10)
    assert good.json()["status_url"].endswith(
        "/fal-ai/kling-video/requests/" + record["id"] + "/status"
    )


@pytest.fixture
def operator_client(api_settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    path = tmp_path / "models.yaml"
    override = {**ADDED_ENTRY, "endpoint_id": VIDEO, "summary": "our video", "unit_price": 1.0}
    override["input_schema"] = {**ADDED_ENTRY["input_schema"], "title": "OurVideoInput"}
    path.write_text(yaml.safe_dump({"models": [ADDED_ENTRY, override]}, sort_keys=False))
    app = create_app(
        api_settings.model_copy(update={"models_file": path}), publisher=RecordingPublisher()
    )
    with TestClient(app) as client:
        yield client


def test_an_operator_file_adds_and_overrides_models_everywhere(
    operator_client: TestClient, key: str
) -> None:
    client = operator_client
    listed = [m["endpoint_id"] for m in client.get("/v1/models", headers=auth(key)).json()["items"]]
    assert listed == [*builtin_catalogue(), ADDED]
    video = client.get(f"/v1/models/{VIDEO}", headers=auth(key)).json()
    assert (video["summary"], video["source"]) == ("our video", "operator")
    refused = client.post(f"/{ADDED}", json={"image_url": "http://x"}, headers=auth(key))
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "image_url"]
    assert refused.json()["detail"][0]["type"] == "string_pattern_mismatch"
    created = client.post(
        "/v1/generations",
        json={"model": ADDED, "input": {"image_url": "https://x/a.png"}},
        headers=auth(key),
    )
    assert created.status_code == 201, created.text
    assert created.json()["input"] == {"image_url": "https://x/a.png", "scale": 2}
    assert created.json()["estimated_cost"] == 0.25
    spec = client.get("/openapi.json").json()
    assert "AcmeUpscalerInput" in spec["components"]["schemas"]
    body = spec["paths"][f"/{ADDED}"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/AcmeUpscalerInput"}
    assert body["example"] == ADDED_ENTRY["example"]


def test_a_bad_operator_file_stops_the_app_with_a_line_naming_it(
    api_settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [{**ADDED_ENTRY, "expected_run_seconds": -1}]}))
    with pytest.raises(ValueError, match=r"models\.yaml: model acme/upscaler/v2: expected_run"):
        create_app(api_settings.model_copy(update={"models_file": path}))


UNLISTED = "acme/brand-new/model"


@pytest.fixture
def unlisted_client(api_settings: Settings) -> Iterator[TestClient]:
    settings = api_settings.model_copy(update={"allow_unlisted_models": True})
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:
        yield client


def test_an_unlisted_model_is_refused_by_default_on_every_surface(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    body = {"anything": ["goes", 1]}
    assert client.post(f"/{UNLISTED}", json=body, headers=auth(key)).status_code == 404
    assert client.post(f"/run/{UNLISTED}", json=body, headers=auth(key)).status_code == 404
    created = client.post(
        "/v1/generations", json={"model": UNLISTED, "input": body}, headers=auth(key)
    )
    assert created.status_code == 422
    assert created.json()["detail"][0]["loc"] == ["body", "model"]
    assert recorder.published == []


def test_unlisted_models_pass_with_only_an_object_and_size_check_when_allowed(
    unlisted_client: TestClient, key: str
) -> None:
    client = unlisted_client
    body = {"anything": ["goes", 1], "prompt": 7}
    queued = client.post(f"/{UNLISTED}/", json=body, headers=auth(key))
    assert queued.status_code == 200, queued.text
    assert queued.json()["status_url"].endswith(
        f"/acme/brand-new/requests/{queued.json()['request_id']}/status"
    )
    record = client.get(f"/v1/generations/{queued.json()['request_id']}", headers=auth(key)).json()
    assert (record["model"], record["input"], record["estimated_cost"]) == (UNLISTED, body, None)
    created = client.post(
        "/v1/generations", json={"model": UNLISTED, "input": body}, headers=auth(key)
    )
    assert created.status_code == 201, created.text
    not_object = client.post(f"/{UNLISTED}", json=["a"], headers=auth(key))
    assert not_object.status_code == 422
    assert [(e["loc"], e["type"]) for e in not_object.json()["detail"]] == [(["body"], "dict_type")]
    nested = client.post(
        "/v1/generations", json={"model": UNLISTED, "input": "x"}, headers=auth(key)
    )
    assert nested.status_code == 422
    assert nested.json()["detail"][0]["loc"] == ["body", "input"]
    for malformed in ("acme", "acme/", "-acme/x", "acme/x y"):
        refused = client.post(
            "/v1/generations", json={"model": malformed, "input": {}}, headers=auth(key)
        )
        assert refused.status_code == 422, malformed
        assert refused.json()["detail"][0]["loc"] == ["body", "model"]
    assert client.post("/acme", json={}, headers=auth(key)).status_code == 404
    # fal's queue URLs are never a model: a POST to a request's status is not a submit
    status_path = f"/acme/brand-new/requests/{queued.json()['request_id']}/status"
    assert client.post(status_path, json={}, headers=auth(key)).status_code == 404
    queue_url_as_model = client.post(
        "/v1/generations",
        json={"model": status_path.strip("/"), "input": {}},
        headers=auth(key),
    )
    assert queue_url_as_model.status_code == 422
    too_big = client.post(f"/{UNLISTED}", json={"x": "y" * MAX_BODY}, headers=auth(key))
    assert too_big.status_code == 413
    listed = client.post(f"/{VIDEO}", json={"prompt": "a boat", "duration": "7"}, headers=auth(key))
    assert listed.status_code == 422, "listed models keep their schema"


def test_a_long_models_deadline_outlasts_its_runs(api_settings: Settings, key: str) -> None:
    settings = api_settings.model_copy(update={"job_deadline": 120.0})
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:
        video = client.post(f"/{VIDEO}", json={"prompt": "a boat"}, headers=auth(key)).json()
        image = client.post(f"/{MODEL}", json={"prompt": "a boat"}, headers=auth(key)).json()
        seconds = {}
        for name, queued in (("video", video), ("image", image)):
            record = client.get(f"/v1/generations/{queued['request_id']}", headers=auth(key))
            detail = record.json()
            created = datetime.fromisoformat(detail["created_at"])
            seconds[name] = (
                datetime.fromisoformat(detail["deadline_at"]) - created
            ).total_seconds()
    assert seconds == {"video": 4 * 300, "image": 120}
