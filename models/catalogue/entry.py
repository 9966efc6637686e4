"""One model of the catalogue: what its input looks like, what it makes, costs and takes.

Entries are data (``models/catalogue/builtin/*.yaml`` and the operator's
``GENQUEUE_MODELS_FILE``); this is their typed form. The API validates inputs against
``input_schema``, prices jobs with ``unit_price`` × the units an input asks for, and the worker
plans polls and deadlines from ``expected_run_seconds``.
"""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

BUILT_IN = "built-in"


class OutputKind(StrEnum):
    """What a model's output mostly is (its files' kind): drives how clients show it."""

    IMAGE = "image"
    """Pictures (``images: [{url, width, height, content_type}]`` for the FLUX family)."""
    VIDEO = "video"
    """A video file (``video: {url, content_type, file_name, file_size}``)."""
    AUDIO = "audio"
    """Speech, music or sound (``audio: {url, …}``)."""
    MODEL_3D = "3d"
    """A mesh or scene (glb, obj, …)."""
    TEXT = "text"
    """Text or JSON only, no files."""
    OTHER = "other"
    """Anything else (archives, several kinds at once)."""


@dataclass(frozen=True)
class ModelEntry:
    endpoint_id: str
    summary: str
    output_kind: OutputKind
    input_schema: Mapping[str, Any]
    example: Mapping[str, Any]
    unit_price: float | None
    """USD per unit; None: unpriced (its jobs cost nothing known and no budget counts them)."""
    expected_run_seconds: float
    """How long a job usually runs once started upstream (fal's ``duration_estimate``)."""
    unit: str = "request"
    """What one unit is (``image``, ``second``, ``1000 characters``): for people."""
    units_field: str | None = None
    """The input field that says how many units a job asks for; None: one unit a job."""
    units_per_characters: int | None = None
    """With a text ``units_field``: a unit per this many characters (rounded up)."""
    source: str = field(default=BUILT_IN, compare=False)
    """Where the entry came from (``built-in``, or the operator's file)."""

    @property
    def schema_name(self) -> str:
        """A name for its input schema: the schema's ``title`` when it is one word."""
        title = self.input_schema.get("title")
        if isinstance(title, str) and re.fullmatch(r"[A-Za-z0-9._-]+", title):
            return title
        return self.fallback_schema_name

    @property
    def fallback_schema_name(self) -> str:
        """A name made from the endpoint id: ``fal-ai/flux/dev`` → ``FalAiFluxDevInput``."""
        words = re.split(r"[^A-Za-z0-9]+", self.endpoint_id)
        return "".join(w[:1].upper() + w[1:] for w in words if w) + "Input"

    def units_asked(self, input: Mapping[str, Any]) -> int:
        """Units an (already validated) input asks for: at least one."""
        if self.units_field is None:
            return 1
        value = input.get(self.units_field)
        if self.units_per_characters is not None:
            text = value if isinstance(value, str) else ""
            return max(1, math.ceil(len(text) / self.units_per_characters))
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return 1
        return max(1, math.ceil(value))

    def public(self) -> dict[str, Any]:
        """The entry as ``GET /v1/models/{id}`` and ``genqueue models list --json`` show it."""
        return {
            "endpoint_id": self.endpoint_id,
            "summary": self.summary,
            "output_kind": str(self.output_kind),
            "unit_price": self.unit_price,
            "unit": self.unit,
            "expected_run_seconds": self.expected_run_seconds,
            "input_schema": self.input_schema,
            "example": self.example,
            "source": "built-in" if self.source == BUILT_IN else "operator",
        }
