"""The models genqueue accepts: endpoint id → input schema, summary and example, and how an input
is checked against its schema.

The schemas and examples themselves are in ``api.fal.inputs``; nothing outside this module
looks into a :class:`ModelSpec`'s schema but through :attr:`ModelSpec.schema_name`,
:func:`input_models` and :func:`validate_input`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from api.errors import ValidationFailed, error_items
from api.fal.inputs import (
    EDIT_EXAMPLE,
    MULTI_EXAMPLE,
    SEED_EXAMPLE,
    KontextEditInput,
    KontextMultiInput,
    KontextTextToImageInput,
)


@dataclass(frozen=True)
class ModelSpec:
    endpoint_id: str
    input_model: type[BaseModel]
    summary: str
    example: dict[str, Any]

    @property
    def schema_name(self) -> str:
        """Its input schema's name among the OpenAPI document's components."""
        return self.input_model.__name__


MODELS: dict[str, ModelSpec] = {
    spec.endpoint_id: spec
    for spec in (
        ModelSpec(
            "fal-ai/flux-pro/kontext/text-to-image",
            KontextTextToImageInput,
            "FLUX.1 Kontext [pro] text to image",
            SEED_EXAMPLE,
        ),
        ModelSpec(
            "fal-ai/flux-pro/kontext/max/text-to-image",
            KontextTextToImageInput,
            "FLUX.1 Kontext [max] text to image",
            SEED_EXAMPLE,
        ),
        ModelSpec(
            "fal-ai/flux-pro/kontext", KontextEditInput, "FLUX.1 Kontext [pro] edit", EDIT_EXAMPLE
        ),
        ModelSpec(
            "fal-ai/flux-pro/kontext/max",
            KontextEditInput,
            "FLUX.1 Kontext [max] edit",
            EDIT_EXAMPLE,
        ),
        ModelSpec(
            "fal-ai/flux-pro/kontext/multi",
            KontextMultiInput,
            "FLUX.1 Kontext [pro] multi-image",
            MULTI_EXAMPLE,
        ),
        ModelSpec(
            "fal-ai/flux-pro/kontext/max/multi",
            KontextMultiInput,
            "FLUX.1 Kontext [max] multi-image",
            MULTI_EXAMPLE,
        ),
    )
}
SUPPORTED = tuple(MODELS)


def input_models() -> list[type[BaseModel]]:
    """Every input schema once, in the order of :data:`MODELS`."""
    return list(dict.fromkeys(spec.input_model for spec in MODELS.values()))


def unknown_model_message(model_id: str) -> str:
    return f"Unknown model '{model_id}'. Supported models: {', '.join(SUPPORTED)}"


def validate_input(spec: ModelSpec, payload: Any, *, loc: Sequence[str | int]) -> dict[str, Any]:
    """The input as it will be stored and sent: validated, defaults applied, ``None`` dropped,
    ``safety_tolerance`` a string. Raises :class:`ValidationFailed` (422) naming the fields."""
    try:
        parsed = spec.input_model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(error_items(exc, loc=loc)) from None
    return parsed.model_dump(mode="json", exclude_none=True)
