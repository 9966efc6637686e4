"""The models genqueue accepts: endpoint id → input schema, summary and example."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from api.errors import ValidationFailed, error_items
from api.inputs import (
    SEED_EXAMPLE,
    KontextEditInput,
    KontextMultiInput,
    KontextTextToImageInput,
)

EDIT_EXAMPLE: dict[str, Any] = {
    "prompt": "Put a donut next to the flour.",
    "image_url": "https://v3.fal.media/files/rabbit/rmgBxhwGYb2d3pl3x9sKf_output.png",
}
MULTI_EXAMPLE: dict[str, Any] = {
    "prompt": "Put the little duckling on top of the woman's t-shirt.",
    "image_urls": [
        "https://v3.fal.media/files/penguin/XoW0qavfF-ahg-jX4BMyL_image.webp",
        "https://v3.fal.media/files/tiger/bml6YA7DWJXOigadvxk75_image.webp",
    ],
}


@dataclass(frozen=True)
class ModelSpec:
    endpoint_id: str
    input_model: type[BaseModel]
    summary: str
    example: dict[str, Any]


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
