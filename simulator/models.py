"""Which models the simulator serves, what kind of output each makes and how long it runs.

The simulator stands apart from genqueue's code (it imports none of ``models.catalogue``), so it
reads the built-in catalogue's data files themselves (``models/catalogue/builtin/*.yaml``):
the endpoint id, the ``output_kind`` and the ``expected_run_seconds`` of each entry. A model
not listed there (an operator's or an unlisted one) makes images, as the Kontext family does.

Run times follow the catalogue at the scale the ``run_time`` knob sets: ``run_time`` is the
seed model's run (its entry's ``expected_run_seconds``), and another model runs in proportion
to its own (a 300 s video model runs 50 × ``run_time`` when the seed's entry says 6 s), so a
test that compresses ``run_time`` compresses every model alike. The Kontext family runs
``run_time`` itself, as it always has.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "models" / "catalogue" / "builtin"
SEED_MODEL = "fal-ai/flux-pro/kontext/text-to-image"
KONTEXT_PREFIX = "fal-ai/flux-pro/kontext"


@dataclass(frozen=True, slots=True)
class SimModel:
    endpoint_id: str
    kind: str
    """``image``, ``video``, ``audio``, … (the entry's ``output_kind``)."""
    expected_run_seconds: float


IMAGE_MODEL = SimModel("", "image", 0.0)
"""What an endpoint the catalogue does not list makes (and runs: ``run_time``)."""


@cache
def builtin_models() -> dict[str, SimModel]:
    """The built-in catalogue's models by endpoint id (read once a process)."""
    models: dict[str, SimModel] = {}
    for path in sorted(BUILTIN_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for entry in data.get("models", []):
            model = SimModel(
                str(entry["endpoint_id"]),
                str(entry["output_kind"]),
                float(entry["expected_run_seconds"]),
            )
            models[model.endpoint_id] = model
    return models


def model_for(endpoint: str) -> SimModel:
    return builtin_models().get(endpoint, IMAGE_MODEL)


def run_scale(endpoint: str) -> float:
    """How many ``run_time``s a job of this endpoint runs (1 for the Kontext family and for
    unlisted endpoints)."""
    model = builtin_models().get(endpoint)
    seed = builtin_models().get(SEED_MODEL)
    if model is None or seed is None or endpoint.startswith(KONTEXT_PREFIX):
        return 1.0
    return model.expected_run_seconds / seed.expected_run_seconds
