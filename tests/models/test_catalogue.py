"""The model catalogue as data: the built-ins, an operator's file over them, files refused whole
with a line that names the problem, and inputs checked against each entry's JSON Schema."""

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.catalogue import (
    CatalogueError,
    InputInvalid,
    OutputKind,
    builtin_catalogue,
    expected_run_seconds,
    load_catalogue,
)
from models.pricing import estimate

KONTEXT = "fal-ai/flux-pro/kontext/text-to-image"
SCHNELL = "fal-ai/flux/schnell"
VIDEO = "fal-ai/kling-video/v2.1/master/text-to-video"
SPEECH = "fal-ai/kokoro/american-english"

NEW_ENTRY: dict[str, Any] = {
    "endpoint_id": "fal-ai/some-team/upscaler",
    "summary": "An upscaler",
    "output_kind": "image",
    "unit_price": 0.01,
    "expected_run_seconds": 12.5,
    "input_schema": {
        "type": "object",
        "additionalProperties": False,
        "required": ["image_url"],
        "properties": {
            "image_url": {"type": "string", "minLength": 1},
            "scale": {"type": "integer", "enum": [2, 4], "default": 2},
        },
    },
    "example": {"image_url": "https://example.com/a.png"},
}


def _write(tmp_path: Path, data: Any, name: str = "models.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data) if name.endswith(".yaml") else json.dumps(data))
    return path


def test_builtins_cover_each_kind_with_complete_entries() -> None:
    catalogue = builtin_catalogue()
    kontext = [e for e in catalogue if "/kontext" in e]
    assert len(kontext) == 6
    assert next(iter(catalogue)) == KONTEXT
    kinds = {catalogue[e].output_kind for e in (SCHNELL, VIDEO, SPEECH)}
    assert kinds == {OutputKind.IMAGE, OutputKind.VIDEO, OutputKind.AUDIO}
    for entry in catalogue.values():
        assert entry.summary
        assert entry.unit_price is not None
        assert entry.unit_price > 0
        assert entry.expected_run_seconds > 0
        schema = entry.input_schema
        assert schema["type"] == "object", entry.endpoint_id
        assert schema["properties"], entry.endpoint_id
        for name, prop in schema["properties"].items():
            assert prop.get("description"), (entry.endpoint_id, name)
        # every example passes its own schema, and is stored with the defaults filled in
        stored = catalogue.check_input(entry.endpoint_id, dict(entry.example))
        assert stored.items() >= {k: v for k, v in entry.example.items()}.items()


def test_expected_run_seconds_from_the_entry() -> None:
    assert expected_run_seconds(VIDEO) == 300
    assert expected_run_seconds(SCHNELL) == 2
    assert expected_run_seconds("fal-ai/not-listed") is None


def test_an_operator_file_adds_models_and_overrides_builtins(tmp_path: Path) -> None:
    override = {**NEW_ENTRY, "endpoint_id": SCHNELL, "summary": "ours", "unit_price": 0.5}
    path = _write(tmp_path, {"models": [NEW_ENTRY, override]})
    catalogue = load_catalogue(path)
    assert list(catalogue)[-1] == NEW_ENTRY["endpoint_id"]
    assert list(catalogue).index(SCHNELL) == list(builtin_catalogue()).index(SCHNELL)
    assert catalogue[SCHNELL].summary == "ours"
    assert catalogue[SCHNELL].public()["source"] == "operator"
    assert catalogue[KONTEXT].public()["source"] == "built-in"
    assert expected_run_seconds(NEW_ENTRY["endpoint_id"], catalogue) == 12.5
    assert builtin_catalogue()[SCHNELL].summary != "ours"  # the built-ins are not touched
    stored = catalogue.check_input(NEW_ENTRY["endpoint_id"], {"image_url": "x"})
    assert stored == {"image_url": "x", "scale": 2}


def test_a_json_file_is_read_too(tmp_path: Path) -> None:
    catalogue = load_catalogue(_write(tmp_path, {"models": [NEW_ENTRY]}, "models.json"))
    assert NEW_ENTRY["endpoint_id"] in catalogue


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoint_id": "no-slash"}, "endpoint_id: String should match pattern"),
        ({"output_kind": "hologram"}, "output_kind: Input should be"),
        ({"expected_run_seconds": 0}, "expected_run_seconds: Input should be greater than 0"),
        ({"unit_price": -1}, "unit_price: Input should be greater than or equal to 0"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"input_schema": {"type": "array"}}, "the input must be an object"),
        (
            {"input_schema": {"type": "object", "properties": {"n": {"type": "integr"}}}},
            "input_schema at properties/n/type",
        ),
        ({"example": {}}, "example: image_url: Field required"),
        ({"units_field": "count"}, "units_field: 'count' is not an input field"),
    ],
)
def test_a_bad_entry_refuses_the_file_naming_the_field(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    path = _write(tmp_path, {"models": [{**NEW_ENTRY, **change}]})
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    text = str(caught.value)
    assert text.startswith(str(path)), text
    assert message in text, text


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("models: [", "not YAML or JSON (line"),
        ("- a\n- b\n", 'expected {"models": [entry, …]}'),
        ("models: []\nextra: 1\n", "extra: Extra inputs are not permitted"),
    ],
)
def test_a_file_that_is_not_a_catalogue_is_refused(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(content)
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert message in str(caught.value)


def test_a_model_listed_twice_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    twice = _write(tmp_path, {"models": [NEW_ENTRY, NEW_ENTRY]})
    with pytest.raises(CatalogueError, match="listed twice"):
        load_catalogue(twice)
    with pytest.raises(CatalogueError, match="cannot read"):
        load_catalogue(tmp_path / "absent.yaml")


def _errors(endpoint_id: str, payload: Any) -> list[dict[str, Any]]:
    with pytest.raises(InputInvalid) as caught:
        builtin_catalogue().check_input(endpoint_id, payload, loc=("body",))
    return caught.value.items


@pytest.mark.parametrize(
    ("endpoint_id", "payload", "expected"),
    [
        (VIDEO, {"prompt": "a boat", "duration": "7"}, ("duration", "literal_error")),
        (VIDEO, {"prompt": "a boat", "duration": 5}, ("duration", "literal_error")),
        (VIDEO, {"prompt": "a boat", "cfg_scale": 1.5}, ("cfg_scale", "less_than_equal")),
        (VIDEO, {"prompt": "x" * 2501}, ("prompt", "string_too_long")),
        (SPEECH, {"prompt": "hi", "voice": "robot"}, ("voice", "literal_error")),
        (SPEECH, {"prompt": "hi", "speed": 0}, ("speed", "greater_than_equal")),
        (SPEECH, {"voice": "am_adam"}, ("prompt", "missing")),
        (
            SCHNELL,
            {"prompt": "x", "num_inference_steps": 13},
            ("num_inference_steps", "less_than_equal"),
        ),
        (SCHNELL, {"prompt": "x", "image_size": {"width": 5}}, ("image_size", "literal_error")),
        (SCHNELL, {"prompt": "   "}, ("prompt", "string_blank")),
    ],
)
def test_schema_errors_name_the_field(
    endpoint_id: str, payload: dict[str, Any], expected: tuple[str, str]
) -> None:
    items = _errors(endpoint_id, payload)
    assert [(item["loc"], item["type"]) for item in items] == [(["body", expected[0]], expected[1])]
    assert items[0]["msg"]


def test_errors_follow_pydantics_wording_and_the_schemas_order() -> None:
    items = _errors(KONTEXT, {"colour": "red", "num_images": 9, "guidance_scale": 21})
    assert items == [
        {"type": "missing", "loc": ["body", "prompt"], "msg": "Field required",
         "input": {"colour": "red", "num_images": 9, "guidance_scale": 21}},
        {"type": "less_than_equal", "loc": ["body", "guidance_scale"],
         "msg": "Input should be less than or equal to 20", "input": 21, "ctx": {"le": 20.0}},
        {"type": "less_than_equal", "loc": ["body", "num_images"],
         "msg": "Input should be less than or equal to 4", "input": 9, "ctx": {"le": 4}},
        {"type": "extra_forbidden", "loc": ["body", "colour"],
         "msg": "Extra inputs are not permitted", "input": "red"},
    ]  # fmt: skip
    [too_many] = _errors(
        "fal-ai/flux-pro/kontext/multi", {"prompt": "x", "image_urls": ["https://a/b"] * 11}
    )
    assert too_many["msg"] == "List should have at most 10 items after validation, not 11"
    assert too_many["ctx"] == {"field_type": "List", "max_length": 10, "actual_length": 11}
    [not_object] = _errors(KONTEXT, ["a lighthouse"])
    assert (not_object["loc"], not_object["type"]) == (["body"], "model_type")


def test_valid_input_is_stored_with_defaults_and_json_schema_numbers() -> None:
    catalogue = builtin_catalogue()
    video = catalogue.check_input(VIDEO, {"prompt": "a boat", "cfg_scale": 1})
    assert video == {
        "prompt": "a boat",
        "duration": "5",
        "aspect_ratio": "16:9",
        "negative_prompt": "blur, distort, and low quality",
        "cfg_scale": 1.0,
    }
    assert isinstance(video["cfg_scale"], float)
    image = catalogue.check_input(SCHNELL, {"prompt": "x", "num_images": 2.0, "seed": None})
    assert image["num_images"] == 2
    assert isinstance(image["num_images"], int)
    assert "seed" not in image
    kontext = catalogue.check_input(KONTEXT, {"prompt": "x", "safety_tolerance": 5})
    assert kontext["safety_tolerance"] == "5"


@pytest.mark.parametrize(
    ("endpoint_id", "input", "units"),
    [
        (KONTEXT, {"num_images": 3}, 3),
        (VIDEO, {"duration": "10"}, 10),
        (SPEECH, {"prompt": "x" * 2500}, 3),
        (SPEECH, {"prompt": "x"}, 1),
        (SCHNELL, {}, 1),
    ],
)
def test_prices_count_the_units_each_entry_names(
    endpoint_id: str, input: dict[str, Any], units: int
) -> None:
    price, cost = estimate(endpoint_id, input)
    assert price == builtin_catalogue()[endpoint_id].unit_price
    assert price is not None
    assert cost == round(price * units, 6)
    assert estimate("fal-ai/not-listed", input) == (None, None)


def test_models_sharing_a_schema_share_its_name_and_a_clash_gets_another(tmp_path: Path) -> None:
    catalogue = builtin_catalogue()
    assert catalogue.schema_name(KONTEXT) == "KontextTextToImageInput"
    assert catalogue.schema_name("fal-ai/flux-pro/kontext/max/text-to-image") == (
        "KontextTextToImageInput"
    )
    clash_schema = {**NEW_ENTRY["input_schema"], "title": "FluxSchnellInput"}
    clash = {**NEW_ENTRY, "input_schema": clash_schema}
    loaded = load_catalogue(_write(tmp_path, {"models": [clash]}))
    assert loaded.schema_name(SCHNELL) == "FluxSchnellInput"
    assert loaded.schema_name(NEW_ENTRY["endpoint_id"]) == "FalAiSomeTeamUpscalerInput"
