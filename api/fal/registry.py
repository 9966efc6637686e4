"""The models genqueue accepts: endpoint id → input schema, summary and example, and how an input
is checked against its schema.

The Kontext family's input schemas (UPSTREAM.md §13) are validated strictly: no ``"2"`` for an
integer, no ``"true"`` for a boolean, unknown fields rejected, and one deliberate leniency:
``safety_tolerance`` is a string enum upstream, but relays send it as an integer, so ``2`` is
accepted and stored as ``"2"``. Nothing outside this module looks into a :class:`ModelSpec`'s
schema but through :attr:`ModelSpec.schema_name`, :func:`input_models` and
:func:`validate_input`.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

from api.errors import ValidationFailed, error_items

AspectRatio = Literal["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"]
OutputFormat = Literal["jpeg", "png"]
TOLERANCES = ("1", "2", "3", "4", "5", "6")
MAX_SEED = 2**63 - 1
MAX_PROMPT_LENGTH = 10_000
"""Characters in a prompt. fal's schema sets no bound; its text encoder reads a few hundred
tokens, so this only stops absurd inputs (a 3.9 MB prompt) from being stored and sent."""
MAX_IMAGE_URLS = 10
"""Images in one ``image_urls`` list (the multi-image endpoints combine a handful)."""
URL_PATTERN = r"^(https?://|data:)[!-~]+$"
"""An http(s) URL or a data URI, in printable ASCII (percent-encode anything else)."""


def _whole_number(value: Any) -> Any:
    """``3.0`` as ``3``: JSON Schema counts a number with no fraction as an integer, and so do
    the OpenAPI document and this server (``3.5`` stays a float and is refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _tolerance_as_string(value: Any) -> Any:
    value = _whole_number(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


# Integers that also accept 3.0 (the bounds come first: they apply to the integer).
Seed = Annotated[int, Field(ge=0, le=MAX_SEED), BeforeValidator(_whole_number)]
NumImages = Annotated[int, Field(ge=1, le=4), BeforeValidator(_whole_number)]


SafetyTolerance = Annotated[
    Literal["1", "2", "3", "4", "5", "6"],
    BeforeValidator(_tolerance_as_string),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": list(TOLERANCES)},
                {"type": "integer", "minimum": 1, "maximum": 6},
            ]
        }
    ),
]
ImageUrl = Annotated[str, Field(pattern=URL_PATTERN, description="an http(s) URL or a data URI")]


def _not_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError(
            "string_blank", "String should have at least one character that is not white space"
        )
    return value


Prompt = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_PROMPT_LENGTH,
        json_schema_extra={"pattern": r"\S"},  # what _not_blank checks, with a clearer message
        description="The prompt to generate an image from (not only white space).",
    ),
    AfterValidator(_not_blank),
]


class KontextBase(BaseModel):
    """Fields shared by every Kontext endpoint."""

    model_config = ConfigDict(strict=True, extra="forbid")

    prompt: Prompt
    seed: Seed | None = Field(None, description="Same seed and prompt give the same image.")
    guidance_scale: float = Field(
        3.5, ge=1, le=20, description="CFG scale: how closely the model follows the prompt."
    )
    sync_mode: bool = Field(
        False, description="Return the image as a data URI instead of a URL (not kept upstream)."
    )
    num_images: NumImages = Field(1, description="Number of images to generate.")
    output_format: OutputFormat = Field("jpeg", description="Format of the generated images.")
    safety_tolerance: SafetyTolerance = Field(
        "2", description='Safety tolerance, "1" (strictest) to "6"; an integer is accepted too.'
    )
    enhance_prompt: bool = Field(False, description="Let upstream enhance the prompt.")


class KontextTextToImageInput(KontextBase):
    """Input of ``fal-ai/flux-pro/kontext/text-to-image`` and ``…/kontext/max/text-to-image``."""

    aspect_ratio: AspectRatio = Field("1:1", description="Aspect ratio of the generated image.")


class KontextEditInput(KontextBase):
    """Input of ``fal-ai/flux-pro/kontext`` and ``…/kontext/max``: edit one image."""

    image_url: ImageUrl = Field(description="The image to edit (URL or data URI).")
    aspect_ratio: AspectRatio | None = Field(
        None, description="Aspect ratio; by default the input image's."
    )


class KontextMultiInput(KontextBase):
    """Input of ``fal-ai/flux-pro/kontext/multi`` and ``…/kontext/max/multi``: several images."""

    image_urls: list[ImageUrl] = Field(
        min_length=1, max_length=MAX_IMAGE_URLS, description="The images to combine."
    )
    aspect_ratio: AspectRatio | None = Field(
        None, description="Aspect ratio; by default the input images'."
    )


SEED_EXAMPLE: dict[str, Any] = {
    "prompt": (
        "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. "
        "Sharp focus on eye texture and color. Natural lighting to capture authentic eye shine "
        'and depth. The word "FLUX" is painted over it in big, white brush strokes with visible '
        "texture."
    ),
    "guidance_scale": 3.5,
    "num_images": 1,
    "output_format": "jpeg",
    "safety_tolerance": "2",
    "aspect_ratio": "1:1",
}
"""The request example of the product owner's seed document, verbatim."""
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
