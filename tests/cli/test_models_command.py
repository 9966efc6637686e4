"""`genqueue models list|show`: the catalogue this configuration serves, read locally."""

import json
from pathlib import Path

import yaml

from models.catalogue import builtin_catalogue
from tests.cli.test_local_commands import genqueue

VIDEO = "fal-ai/kling-video/v2.1/master/text-to-video"
ADDED = {
    "endpoint_id": "acme/tts/v1",
    "summary": "Acme speech",
    "output_kind": "audio",
    "unit_price": 0.5,
    "expected_run_seconds": 3,
    "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}},
    "example": {"text": "hello"},
}


def test_list_shows_every_builtin_with_kind_price_and_run_time(tmp_path: Path) -> None:
    run = genqueue("models", "list", cwd=tmp_path, data_dir=tmp_path / "d")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split("\t")[:3] == ["endpoint id", "kind", "price"]
    rows = {line.split("\t")[0]: line.split("\t") for line in lines[1:]}
    assert list(rows) == list(builtin_catalogue())
    assert rows[VIDEO][1:5] == ["video", "$0.28/second", "300s", "built-in"]


def test_list_and_show_include_the_operators_file(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [ADDED]}))
    env = {"GENQUEUE_MODELS_FILE": str(path)}
    listed = genqueue("models", "list", "--json", cwd=tmp_path, data_dir=tmp_path / "d", env=env)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert entries[-1]["endpoint_id"] == "acme/tts/v1"
    assert entries[-1]["source"] == "operator"
    shown = genqueue("models", "show", VIDEO, cwd=tmp_path, data_dir=tmp_path / "d", env=env)
    assert json.loads(shown.stdout)["input_schema"]["properties"]["duration"]["enum"] == ["5", "10"]


def test_a_bad_file_or_an_unknown_model_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(yaml.safe_dump({"models": [{**ADDED, "output_kind": "smell"}]}))
    env = {"GENQUEUE_MODELS_FILE": str(path)}
    bad = genqueue("models", "list", cwd=tmp_path, data_dir=tmp_path / "d", env=env)
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: GENQUEUE_MODELS_FILE: ")
    assert "output_kind" in bad.stderr
    assert len(bad.stderr.splitlines()) == 1
    unknown = genqueue("models", "show", "fal-ai/nope", cwd=tmp_path, data_dir=tmp_path / "d")
    assert unknown.returncode == 2
    assert "no model 'fal-ai/nope'" in unknown.stderr


OPENAPI = Path(__file__).parents[1] / "models" / "fixtures" / "fal-ai-flux-dev.openapi.json"


def test_import_prints_an_entry_the_catalogue_accepts(tmp_path: Path) -> None:
    run = genqueue(
        "models", "import", "fal-ai/flux/dev", "--openapi", str(OPENAPI), "--price", "0.025",
        cwd=tmp_path, data_dir=tmp_path / "d",
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    [entry] = yaml.safe_load(run.stdout)["models"]
    assert (entry["endpoint_id"], entry["output_kind"], entry["unit_price"]) == (
        "fal-ai/flux/dev",
        "image",
        0.025,
    )
    assert entry["input_schema"]["$defs"]["ImageSize"]["type"] == "object"
    path = tmp_path / "models.yaml"
    path.write_text(run.stdout)
    env = {"GENQUEUE_MODELS_FILE": str(path)}
    shown = genqueue(
        "models", "show", "fal-ai/flux/dev", cwd=tmp_path, data_dir=tmp_path / "d", env=env
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["source"] == "operator"


def test_import_into_appends_to_the_operators_file_keeping_it_as_written(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text("# our models\nmodels:\n  # speech\n" + _indented(yaml.safe_dump([ADDED])))
    args = ("models", "import", "fal-ai/flux/dev", "--openapi", str(OPENAPI), "--into", str(path))
    run = genqueue(*args, "--run-seconds", "3", cwd=tmp_path, data_dir=tmp_path / "d")
    assert run.returncode == 0, run.stderr
    text = path.read_text()
    assert text.startswith("# our models\nmodels:\n  # speech\n")
    models = yaml.safe_load(text)["models"]
    assert [m["endpoint_id"] for m in models] == ["acme/tts/v1", "fal-ai/flux/dev"]
    assert models[1]["expected_run_seconds"] == 3
    again = genqueue(*args, cwd=tmp_path, data_dir=tmp_path / "d")
    assert again.returncode == 2
    assert "already lists model fal-ai/flux/dev" in again.stderr
    assert path.read_text() == text
    created = tmp_path / "new.yaml"
    fresh = genqueue(*args[:-1], str(created), cwd=tmp_path, data_dir=tmp_path / "d")
    assert fresh.returncode == 0, fresh.stderr
    assert [m["endpoint_id"] for m in yaml.safe_load(created.read_text())["models"]] == [
        "fal-ai/flux/dev"
    ]


def test_import_of_a_document_without_the_model_is_one_line_and_changes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "models.yaml"
    run = genqueue(
        "models", "import", "fal-ai/other", "--openapi", str(OPENAPI), "--into", str(path),
        cwd=tmp_path, data_dir=tmp_path / "d",
    )  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        "error: OpenAPI document for fal-ai/other: no POST /fal-ai/other in its paths "
        "(is it this model's?)"
    ]
    assert not path.exists()
    bad_kind = genqueue(
        "models", "import", "fal-ai/flux/dev", "--openapi", str(OPENAPI), "--kind", "hologram",
        cwd=tmp_path, data_dir=tmp_path / "d",
    )  # fmt: skip
    assert bad_kind.returncode == 2
    assert "--kind: 'hologram' is not one of" in bad_kind.stderr


def _indented(text: str) -> str:
    return "".join("  " + line for line in text.splitlines(True))
