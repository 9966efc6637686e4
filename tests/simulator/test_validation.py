"""Kontext input validation: 422 at submit, deferred to the result, or off."""

from typing import Any

import pytest

from tests.simulator.helpers import MODEL, SimClient


def _submit(api: SimClient, body: Any, endpoint: str = MODEL) -> Any:
    return api.http.post(f"/{endpoint}", json=body)


def test_missing_prompt_is_the_documented_422(api: SimClient) -> None:
    response = _submit(api, {"guidance_scale": 3.5})
    assert response.status_code == 422
    assert response.json() == {
        "detail": [
            {
                "type": "missing",
                "loc": ["body", "prompt"],
                "msg": "Field required",
                "input": {"guidance_scale": 3.5},
            }
        ]
    }
    assert api.sim.stats()["jobs"] == {"in_queue": 0, "in_progress": 0, "completed": 0}
    [record] = api.sim.submits()
    assert (record["request_id"], record["status_code"]) == (None, 422)
    assert record["body"] == {"guidance_scale": 3.5}


def test_guidance_scale_21_matches_fal_docs(api: SimClient) -> None:
    response = _submit(api, {"prompt": "x", "guidance_scale": 21})
    assert response.json() == {
        "detail": [
            {
                "type": "less_than_equal",
                "loc": ["body", "guidance_scale"],
                "msg": "Input should be less than or equal to 20",
                "input": 21,
                "ctx": {"le": 20},
            }
        ]
    }


@pytest.mark.parametrize(
    ("field", "value", "error_type", "ctx"),
    [
        ("prompt", "", "string_too_short", {"min_length": 1}),
        ("prompt", 5, "string_type", None),
        ("guidance_scale", 0.5, "greater_than_equal", {"ge": 1}),
        ("num_images", 0, "greater_than_equal", {"ge": 1}),
        ("num_images", 5, "less_than_equal", {"le": 4}),
        ("output_format", "gif", "literal_error", {"expected": "'jpeg' or 'png'"}),
        ("safety_tolerance", "7", "literal_error", None),
        ("safety_tolerance", 0, "literal_error", None),
        ("aspect_ratio", "5:4", "literal_error", None),
        ("seed", "abc", "int_parsing", None),
        ("enhance_prompt", "maybe", "bool_parsing", None),
        ("sync_mode", [], "bool_type", None),
    ],
)
def test_each_field_is_checked(
    api: SimClient, field: str, value: Any, error_type: str, ctx: dict[str, Any] | None
) -> None:
    body = {"prompt": "x", field: value}
    [error] = _submit(api, body).json()["detail"]
    assert (error["loc"], error["type"], error["input"]) == (["body", field], error_type, value)
    assert error["msg"]
    if ctx is not None:
        assert error["ctx"] == ctx


@pytest.mark.parametrize(
    "extra",
    [
        {"safety_tolerance": "6"},
        {"safety_tolerance": 2},
        {"aspect_ratio": "9:21", "num_images": 4, "output_format": "png"},
        {"seed": 42, "enhance_prompt": True, "sync_mode": False, "guidance_scale": 20},
        {"unknown_field": "ignored"},
    ],
)
def test_valid_inputs_are_accepted(api: SimClient, extra: dict[str, Any]) -> None:
    assert _submit(api, {"prompt": "x", **extra}).status_code == 200


def test_several_errors_are_reported_together(api: SimClient) -> None:
    detail = _submit(api, {"num_images": 9, "output_format": "bmp"}).json()["detail"]
    assert [error["loc"][1] for error in detail] == ["prompt", "num_images", "output_format"]


@pytest.mark.parametrize("endpoint", ["fal-ai/flux-pro/kontext", "fal-ai/flux-pro/kontext/max"])
def test_edit_endpoints_require_image_url(api: SimClient, endpoint: str) -> None:
    [error] = _submit(api, {"prompt": "x"}, endpoint).json()["detail"]
    assert (error["loc"], error["type"]) == (["body", "image_url"], "missing")
    ok = _submit(api, {"prompt": "x", "image_url": "https://e.com/a.png"}, endpoint)
    assert ok.status_code == 200


def test_text_to_image_does_not_require_image_url(api: SimClient) -> None:
    assert _submit(api, {"prompt": "x"}).status_code == 200


def test_body_that_is_not_json_or_not_an_object(api: SimClient) -> None:
    broken = api.http.post(f"/{MODEL}", content=b'{"prompt": ', headers={"content-type": "json"})
    [error] = broken.json()["detail"]
    assert (broken.status_code, error["type"], error["loc"]) == (422, "json_invalid", ["body", 11])
    [error] = _submit(api, ["prompt"]).json()["detail"]
    assert (error["type"], error["loc"]) == ("model_attributes_type", ["body"])
    empty = api.http.post(f"/{MODEL}")
    assert empty.json()["detail"][0] == {
        "type": "missing",
        "loc": ["body"],
        "msg": "Field required",
        "input": None,
    }


def test_deferred_validation_runs_the_job_then_answers_422(api: SimClient) -> None:
    api.sim.configure(validate="result")
    response = _submit(api, {"prompt": "x", "num_images": 9})
    assert response.status_code == 200
    handle = response.json()
    assert api.status(handle).json()["status"] == "IN_PROGRESS"
    api.advance(10.0)
    status = api.status(handle)
    assert status.status_code == 200
    assert status.json()["status"] == "COMPLETED"
    assert status.json()["error_type"] == "validation_error"
    result = api.result(handle)
    assert result.status_code == 422
    assert result.json() == {
        "detail": [
            {
                "type": "less_than_equal",
                "loc": ["body", "num_images"],
                "msg": "Input should be less than or equal to 4",
                "input": 9,
                "ctx": {"le": 4},
            }
        ]
    }
    assert result.headers["x-fal-request-id"] == handle["request_id"]
    assert result.headers["x-fal-billable-units"] == "0"
    assert api.info(handle["request_id"])["outcome"] == "error"


def test_deferred_validation_still_rejects_unparseable_json(api: SimClient) -> None:
    api.sim.configure(validate="result")
    response = api.http.post(f"/{MODEL}", content=b"nope")
    assert response.status_code == 422


def test_validation_off_accepts_anything_and_uses_defaults(api: SimClient) -> None:
    api.sim.configure(validate="off", run_time=1.0)
    handle = _submit(api, {"num_images": 99, "aspect_ratio": "weird"}).json()
    api.advance(1.0)
    body = api.result(handle).json()
    assert len(body["images"]) == 1
    assert body["images"][0]["width"] == 1024
    assert body["prompt"] == ""
