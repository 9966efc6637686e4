"""Every input rule of DESIGN §4 / UPSTREAM §13, on the fal surface and the native one.

Invalid input answers 422 with a FastAPI-style ``detail`` naming the field; nothing is stored
and nothing is published. Valid input is stored with defaults applied.
"""

from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.fal.registry import MAX_IMAGE_URLS, MAX_PROMPT_LENGTH
from tests.api.support import EDIT_MODEL, MODEL, RecordingPublisher, auth

PROMPT = {"prompt": "a lighthouse at dusk"}
DEFAULTS = {
    "prompt": "a lighthouse at dusk",
    "guidance_scale": 3.5,
    "sync_mode": False,
    "num_images": 1,
    "output_format": "jpeg",
    "safety_tolerance": "2",
    "enhance_prompt": False,
    "aspect_ratio": "1:1",
}

INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({}, "prompt", "missing"),
    ({"prompt": ""}, "prompt", "string_too_short"),
    ({"prompt": "   "}, "prompt", "string_blank"),
    ({"prompt": "\n\t "}, "prompt", "string_blank"),
    ({"prompt": 5}, "prompt", "string_type"),
    ({**PROMPT, "guidance_scale": 0.99}, "guidance_scale", "greater_than_equal"),
    ({**PROMPT, "guidance_scale": 20.01}, "guidance_scale", "less_than_equal"),
    ({**PROMPT, "guidance_scale": "3.5"}, "guidance_scale", "float_type"),
    ({**PROMPT, "guidance_scale": True}, "guidance_scale", "float_type"),
    ({**PROMPT, "num_images": 0}, "num_images", "greater_than_equal"),
    ({**PROMPT, "num_images": 5}, "num_images", "less_than_equal"),
    ({**PROMPT, "num_images": 2.5}, "num_images", "int_type"),
    ({**PROMPT, "num_images": "2"}, "num_images", "int_type"),
    ({**PROMPT, "output_format": "gif"}, "output_format", "literal_error"),
    ({**PROMPT, "output_format": "default"}, "output_format", "literal_error"),
    ({**PROMPT, "safety_tolerance": "0"}, "safety_tolerance", "literal_error"),
    ({**PROMPT, "safety_tolerance": "7"}, "safety_tolerance", "literal_error"),
    ({**PROMPT, "safety_tolerance": 0}, "safety_tolerance", "literal_error"),
    ({**PROMPT, "safety_tolerance": 7}, "safety_tolerance", "literal_error"),
    ({**PROMPT, "safety_tolerance": True}, "safety_tolerance", "literal_error"),
    ({**PROMPT, "safety_tolerance": 2.5}, "safety_tolerance", "literal_error"),
    ({**PROMPT, "seed": 1.5}, "seed", "int_type"),
    ({"prompt": "x" * (MAX_PROMPT_LENGTH + 1)}, "prompt", "string_too_long"),
    ({**PROMPT, "aspect_ratio": "5:4"}, "aspect_ratio", "literal_error"),
    ({**PROMPT, "aspect_ratio": 1}, "aspect_ratio", "literal_error"),
    ({**PROMPT, "seed": -1}, "seed", "greater_than_equal"),
    ({**PROMPT, "seed": "42"}, "seed", "int_type"),
    ({**PROMPT, "seed": 2**63}, "seed", "less_than_equal"),
    ({**PROMPT, "enhance_prompt": "yes"}, "enhance_prompt", "bool_type"),
    ({**PROMPT, "sync_mode": 1}, "sync_mode", "bool_type"),
    ({**PROMPT, "image_size": "square"}, "image_size", "extra_forbidden"),
]


def _submit(client: TestClient, key: str, body: Any, model: str = MODEL) -> Any:
    return client.post(f"/{model}", json=body, headers=auth(key))


def _stored_input(client: TestClient, key: str, request_id: str) -> dict[str, Any]:
    record = client.get(f"/v1/generations/{request_id}", headers=auth(key)).json()
    return dict(record["input"])


def _assert_nothing_stored(client: TestClient, key: str, recorder: RecordingPublisher) -> None:
    assert client.get("/v1/generations", headers=auth(key)).json()["items"] == []
    assert recorder.published == []


@pytest.mark.parametrize(("body", "field", "kind"), INVALID)
def test_fal_submit_rejects(
    client: TestClient, key: str, recorder: RecordingPublisher, body: Any, field: str, kind: str
) -> None:
    response = _submit(client, key, body)
    assert response.status_code == 422, response.text
    [error] = [e for e in response.json()["detail"] if e["loc"] == ["body", field]]
    assert error["type"] == kind
    assert error["msg"]
    _assert_nothing_stored(client, key, recorder)


@pytest.mark.parametrize(("body", "field", "kind"), INVALID)
def test_native_create_rejects(
    client: TestClient, key: str, recorder: RecordingPublisher, body: Any, field: str, kind: str
) -> None:
    response = client.post(
        "/v1/generations", json={"model": MODEL, "input": body}, headers=auth(key)
    )
    assert response.status_code == 422, response.text
    [error] = [e for e in response.json()["detail"] if e["loc"] == ["body", "input", field]]
    assert error["type"] == kind
    _assert_nothing_stored(client, key, recorder)


def test_defaults_are_applied_and_stored(client: TestClient, key: str) -> None:
    response = _submit(client, key, PROMPT)
    assert response.status_code == 200, response.text
    assert _stored_input(client, key, response.json()["request_id"]) == DEFAULTS


@pytest.mark.parametrize(
    ("given", "stored"),
    [("1", "1"), (1, "1"), ("6", "6"), (6, "6"), (3, "3"), ("5", "5")],
)
def test_safety_tolerance_string_or_integer_is_stored_as_string(
    client: TestClient, key: str, given: Any, stored: str
) -> None:
    response = _submit(client, key, {**PROMPT, "safety_tolerance": given})
    assert response.status_code == 200, response.text
    assert _stored_input(client, key, response.json()["request_id"])["safety_tolerance"] == stored


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ({"num_images": 3.0}, {"num_images": 3}),
        ({"seed": 42.0}, {"seed": 42}),
        ({"safety_tolerance": 4.0}, {"safety_tolerance": "4"}),
    ],
)
def test_whole_numbers_count_as_integers_as_in_json_schema(
    client: TestClient, key: str, given: dict[str, Any], stored: dict[str, Any]
) -> None:
    response = _submit(client, key, {**PROMPT, **given})
    assert response.status_code == 200, response.text
    assert _stored_input(client, key, response.json()["request_id"]).items() >= stored.items()


def test_prompt_and_image_list_have_upper_bounds(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    longest = _submit(client, key, {"prompt": "x" * MAX_PROMPT_LENGTH})
    assert longest.status_code == 200, longest.text
    urls = [f"https://img.example/{i}.png" for i in range(MAX_IMAGE_URLS + 1)]
    multi = "fal-ai/flux-pro/kontext/multi"
    most = _submit(client, key, {**PROMPT, "image_urls": urls[:-1]}, model=multi)
    assert most.status_code == 200, most.text
    recorder.published.clear()
    too_many = _submit(client, key, {**PROMPT, "image_urls": urls}, model=multi)
    assert too_many.status_code == 422, too_many.text
    [error] = too_many.json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "image_urls"], "too_long")
    assert recorder.published == []


@pytest.mark.parametrize(
    "ratio", ["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"]
)
def test_every_aspect_ratio_is_accepted(client: TestClient, key: str, ratio: str) -> None:
    response = _submit(client, key, {**PROMPT, "aspect_ratio": ratio})
    assert response.status_code == 200, response.text
    assert _stored_input(client, key, response.json()["request_id"])["aspect_ratio"] == ratio


@pytest.mark.parametrize(
    "extra",
    [
        {"guidance_scale": 1},
        {"guidance_scale": 20},
        {"guidance_scale": 7.25},
        {"num_images": 4},
        {"output_format": "png"},
        {"seed": 0},
        {"seed": 2**63 - 1},
        {"enhance_prompt": True, "sync_mode": True},
    ],
)
def test_boundary_values_are_accepted(client: TestClient, key: str, extra: dict[str, Any]) -> None:
    response = _submit(client, key, {**PROMPT, **extra})
    assert response.status_code == 200, response.text
    stored = _stored_input(client, key, response.json()["request_id"])
    assert stored == {**DEFAULTS, **extra}


def test_integer_guidance_scale_is_stored_as_a_number(client: TestClient, key: str) -> None:
    response = _submit(client, key, {**PROMPT, "guidance_scale": 7})
    assert _stored_input(client, key, response.json()["request_id"])["guidance_scale"] == 7.0


def test_several_errors_are_all_named(client: TestClient, key: str) -> None:
    response = _submit(client, key, {"num_images": 9, "colour": "red"})
    fields = {tuple(e["loc"]) for e in response.json()["detail"]}
    assert fields == {("body", "prompt"), ("body", "num_images"), ("body", "colour")}


def test_body_must_be_an_object(client: TestClient, key: str) -> None:
    response = _submit(client, key, ["a lighthouse"])
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body"]


def test_edit_model_requires_an_image_url(
    client: TestClient, key: str, recorder: RecordingPublisher
) -> None:
    response = _submit(client, key, PROMPT, model=EDIT_MODEL)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "image_url"]
    assert response.json()["detail"][0]["type"] == "missing"
    bad = _submit(client, key, {**PROMPT, "image_url": "ftp://example.com/a.png"}, EDIT_MODEL)
    assert bad.status_code == 422
    assert bad.json()["detail"][0]["loc"] == ["body", "image_url"]
    _assert_nothing_stored(client, key, recorder)


def test_edit_model_stores_no_default_aspect_ratio(client: TestClient, key: str) -> None:
    body = {**PROMPT, "image_url": "https://v3.fal.media/files/a.png"}
    response = _submit(client, key, body, model=EDIT_MODEL)
    assert response.status_code == 200, response.text
    stored = _stored_input(client, key, response.json()["request_id"])
    assert stored["image_url"] == body["image_url"]
    assert "aspect_ratio" not in stored
    data_uri = _submit(
        client,
        key,
        {**PROMPT, "image_url": "data:image/png;base64,iVBO"},
        model="fal-ai/flux-pro/kontext/max",
    )
    assert data_uri.status_code == 200, data_uri.text


def test_multi_model_requires_image_urls(client: TestClient, key: str) -> None:
    model = "fal-ai/flux-pro/kontext/multi"
    assert _submit(client, key, PROMPT, model=model).json()["detail"][0]["loc"] == [
        "body",
        "image_urls",
    ]
    empty = _submit(client, key, {**PROMPT, "image_urls": []}, model=model)
    assert empty.json()["detail"][0]["type"] == "too_short"
    ok = _submit(client, key, {**PROMPT, "image_urls": ["https://x.test/a.png"]}, model=model)
    assert ok.status_code == 200, ok.text


def test_native_create_rejects_unknown_fields_and_models(client: TestClient, key: str) -> None:
    extra = client.post(
        "/v1/generations", json={"model": MODEL, "input": PROMPT, "hook": 1}, headers=auth(key)
    )
    assert extra.status_code == 422
    assert extra.json()["detail"][0]["loc"] == ["body", "hook"]
    unknown = client.post(
        "/v1/generations", json={"model": "fal-ai/flux/dev", "input": PROMPT}, headers=auth(key)
    )
    assert unknown.status_code == 422
    [error] = unknown.json()["detail"]
    assert error["loc"] == ["body", "model"]
    assert MODEL in error["msg"]
    missing = client.post("/v1/generations", json={"input": PROMPT}, headers=auth(key))
    assert missing.json()["detail"][0]["loc"] == ["body", "model"]
    hook = client.post(
        "/v1/generations",
        json={"model": MODEL, "input": PROMPT, "webhook_url": "ftp://x"},
        headers=auth(key),
    )
    assert hook.json()["detail"][0]["loc"] == ["body", "webhook_url"]


def test_fal_webhook_must_be_http(client: TestClient, key: str) -> None:
    response = client.post(
        f"/{MODEL}", params={"fal_webhook": "javascript:alert(1)"}, json=PROMPT, headers=auth(key)
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "fal_webhook"]


@pytest.mark.parametrize(
    ("raw", "loc"),
    [
        (b'{"prompt": "a\\u0000b"}', ["body", "prompt"]),
        (b'{"prompt": "\\ud800"}', ["body", "prompt"]),
        (b'{"prompt": "x", "image_urls": ["https://a/\\u0000"]}', ["body", "image_urls", 0]),
        (b'{"prompt": "x", "\\u0000": 1}', ["body", "<key>"]),
    ],
)
def test_text_postgres_cannot_store_is_422(
    client: TestClient, key: str, recorder: RecordingPublisher, raw: bytes, loc: list[Any]
) -> None:
    response = client.post(
        f"/{MODEL}", content=raw, headers={**auth(key), "Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    _assert_nothing_stored(client, key, recorder)
