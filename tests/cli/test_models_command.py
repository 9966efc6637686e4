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
