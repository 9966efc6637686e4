"""models/catalogue/openapi.py: fal's OpenAPI document of a model made a catalogue entry that
validates inputs like the built-ins."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from models.catalogue import Catalogue, CatalogueError, InputInvalid, load_catalogue
from models.catalogue.openapi import entry_from_openapi, entry_yaml

FIXTURE = Path(__file__).parent / "fixtures" / "fal-ai-flux-dev.openapi.json"
MODEL = "fal-ai/flux/dev"


def _document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(FIXTURE.read_text())
    return loaded


def _catalogue(tmp_path: Path, entry: dict[str, Any]) -> Catalogue:
    path = tmp_path / "models.yaml"
    path.write_text(entry_yaml(entry))
    return load_catalogue(path)


def test_the_imported_entry_validates_inputs_like_a_builtin(tmp_path: Path) -> None:
    entry = entry_from_openapi(_document(), MODEL, unit_price=0.025, expected_run_seconds=4)
    catalogue = _catalogue(tmp_path, entry)
    assert catalogue[MODEL].output_kind == "image"
    assert catalogue[MODEL].source != "built-in"
    assert catalogue.schema_name(MODEL) == "FluxDevInput"
    stored = catalogue.check_input(MODEL, {"prompt": "a fox", "seed": None})
    assert stored == {
        "prompt": "a fox",
        "image_size": "landscape_4_3",
        "num_inference_steps": 28,
        "guidance_scale": 3.5,
        "sync_mode": False,
        "num_images": 1,
        "enable_safety_checker": True,
        "output_format": "jpeg",
        "acceleration": "none",
    }
    sized = catalogue.check_input(MODEL, {"prompt": "a fox", "image_size": {"width": 64}})
    assert sized["image_size"] == {"width": 64}
    with pytest.raises(InputInvalid) as caught:
        catalogue.check_input(
            MODEL,
            {"num_inference_steps": 51, "output_format": "gif", "seed": "7"},
            loc=("body",),
        )
    by_field = {tuple(i["loc"]): i for i in caught.value.items}
    assert set(by_field) == {
        ("body", "prompt"),
        ("body", "num_inference_steps"),
        ("body", "output_format"),
        ("body", "seed"),
    }
    assert by_field[("body", "prompt")]["type"] == "missing"
    assert by_field[("body", "num_inference_steps")]["type"] == "less_than_equal"
    assert by_field[("body", "num_inference_steps")]["ctx"] == {"le": 50}
    assert by_field[("body", "output_format")]["type"] == "literal_error"


def test_a_bad_nested_value_behind_a_ref_is_refused_naming_its_field(tmp_path: Path) -> None:
    catalogue = _catalogue(tmp_path, entry_from_openapi(_document(), MODEL))
    with pytest.raises(InputInvalid) as caught:
        catalogue.check_input(MODEL, {"prompt": "x", "image_size": {"width": 0}}, loc=("body",))
    assert [i["loc"][:2] for i in caught.value.items] == [["body", "image_size"]]


def test_kind_run_time_and_example_come_from_the_document_when_not_given() -> None:
    entry = entry_from_openapi(_document(), "/fal-ai/flux/dev/")
    assert entry["endpoint_id"] == MODEL
    assert "unit_price" not in entry
    assert entry["expected_run_seconds"] == 10.0
    assert list(entry["example"]) == ["prompt"]
    video = _document()
    video["info"]["x-fal-metadata"]["category"] = "image-to-video"
    assert entry_from_openapi(video, MODEL)["output_kind"] == "video"
    unlabelled = _document()
    del unlabelled["info"]["x-fal-metadata"]
    assert entry_from_openapi(unlabelled, MODEL)["output_kind"] == "image"  # from `images`
    assert yaml.safe_load(entry_yaml(entry))["models"] == [entry]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("paths"), "not an OpenAPI document (no paths)"),
        (
            lambda d: d["components"]["schemas"].pop("ImageSize"),
            "refers to a schema it lacks: #/components/schemas/ImageSize",
        ),
        (
            lambda d: d["components"]["schemas"]["FluxDevInput"]["properties"].update(
                prompt={"type": "strung"}
            ),
            "input_schema at properties/prompt/type",
        ),
    ],
)
def test_a_document_that_cannot_make_an_entry_is_refused_naming_why(
    change: Any, message: str
) -> None:
    document = copy.deepcopy(_document())
    change(document)
    with pytest.raises(CatalogueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        entry_from_openapi(document, MODEL)
