"""Input validation for the Kontext family (UPSTREAM.md §13) and lenient parameter extraction.

Errors come straight from pydantic, with ``loc`` prefixed by ``"body"``, so their shape is what a
fal (FastAPI) app answers: ``{"loc", "msg", "type", "input"[, "ctx"]}``.
"""

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

AspectRatio = Literal["21:9", "16:9", "4:3", "3:2", "1:1", "2:3", "3:4", "9:16", "9:21"]
OutputFormat = Literal["jpeg", "png"]

#: Pixel size (width, height) per aspect ratio (UPSTREAM.md §13).
IMAGE_SIZES: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "16:9": (1392, 752),
    "9:16": (752, 1392),
    "21:9": (1568, 672),
    "9:21": (672, 1568),
    "4:3": (1184, 880),
    "3:4": (880, 1184),
    "3:2": (1248, 832),
    "2:3": (832, 1248),
}
#: Endpoints that edit an input image and so require ``image_url``.
IMAGE_URL_ENDPOINTS = frozenset({"fal-ai/flux-pro/kontext", "fal-ai/flux-pro/kontext/max"})
#: Endpoints that combine several input images and so require ``image_urls``.
IMAGE_URLS_ENDPOINTS = frozenset(
    {"fal-ai/flux-pro/kontext/multi", "fal-ai/flux-pro/kontext/max/multi"}
)


def _int_tolerance_to_str(value: Any) -> Any:
    """Relays send ``safety_tolerance`` as an int; fal's enum is a string."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


SafetyTolerance = Annotated[
    Literal["1", "2", "3", "4", "5", "6"], BeforeValidator(_int_tolerance_to_str)
]


class KontextInput(BaseModel):
    """Text-to-image input (``fal-ai/flux-pro/kontext/text-to-image`` and siblings)."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1)
    seed: int | None = None
    guidance_scale: float = Field(default=3.5, ge=1, le=20)
    sync_mode: bool = False
    num_images: int = Field(default=1, ge=1, le=4)
    output_format: OutputFormat = "jpeg"
    safety_tolerance: SafetyTolerance = "2"
    enhance_prompt: bool = False
    aspect_ratio: AspectRatio = "1:1"
    image_url: str | None = None
    image_urls: list[str] | None = None


class KontextEditInput(KontextInput):
    """Edit input: an ``image_url`` is required."""

    image_url: str


class KontextMultiInput(KontextInput):
    """Multi-image input: ``image_urls`` is required."""

    image_urls: list[str]


def _model_for(endpoint: str) -> type[KontextInput]:
    if endpoint in IMAGE_URL_ENDPOINTS:
        return KontextEditInput
    if endpoint in IMAGE_URLS_ENDPOINTS:
        return KontextMultiInput
    return KontextInput


def parse_json_body(raw: bytes) -> tuple[Any, list[dict[str, Any]] | None]:
    """Decode a request body; on failure the 422 ``detail`` list FastAPI would answer."""
    if not raw.strip():
        return None, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}]
    try:
        return json.loads(raw), None
    except (ValueError, UnicodeDecodeError) as exc:
        text = raw.decode("utf-8", errors="replace")
        error = {
            "type": "json_invalid",
            "loc": ["body", getattr(exc, "pos", 0)],
            "msg": "JSON decode error",
            "input": {},
            "ctx": {"error": getattr(exc, "msg", str(exc))},
        }
        return text, [error]


@dataclass(frozen=True, slots=True)
class GenParams:
    """What a job generates, read leniently (invalid values fall back to defaults)."""

    prompt: str
    seed: int | None
    num_images: int
    output_format: str
    aspect_ratio: str

    @property
    def size(self) -> tuple[int, int]:
        return IMAGE_SIZES[self.aspect_ratio]

    @property
    def nsfw(self) -> bool:
        return "[nsfw]" in self.prompt.lower()


def gen_params(body: Any) -> GenParams:
    """Generation parameters from a (possibly invalid) input body."""
    data: dict[str, Any] = body if isinstance(body, dict) else {}
    prompt = data.get("prompt")
    seed = data.get("seed")
    num = data.get("num_images")
    fmt = data.get("output_format")
    ratio = data.get("aspect_ratio")
    return GenParams(
        prompt=prompt if isinstance(prompt, str) else "",
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        num_images=num
        if isinstance(num, int) and not isinstance(num, bool) and 1 <= num <= 4
        else 1,
        output_format=fmt if fmt in ("jpeg", "png") else "jpeg",
        aspect_ratio=ratio if isinstance(ratio, str) and ratio in IMAGE_SIZES else "1:1",
    )


def check_input(endpoint: str, body: Any) -> tuple[GenParams, list[dict[str, Any]]]:
    """The job's parameters and the 422 ``detail`` items (empty when ``body`` is valid)."""
    try:
        model = _model_for(endpoint).model_validate(body)
    except ValidationError as exc:
        errors = [_fastapi_error(error, body) for error in exc.errors(include_url=False)]
        return gen_params(body), errors
    params = GenParams(
        prompt=model.prompt,
        seed=model.seed,
        num_images=model.num_images,
        output_format=model.output_format,
        aspect_ratio=model.aspect_ratio,
    )
    return params, []


def _fastapi_error(error: Any, body: Any) -> dict[str, Any]:
    """A pydantic error as FastAPI reports a body error (``input`` as sent, not as coerced)."""
    item: dict[str, Any] = dict(error)
    loc = item["loc"]
    if len(loc) == 1 and isinstance(body, dict) and loc[0] in body:
        item["input"] = body[loc[0]]
    item["loc"] = ["body", *loc]
    if item["type"] == "model_type":
        item.update(
            type="model_attributes_type",
            msg="Input should be a valid dictionary or object to extract fields from",
        )
        item.pop("ctx", None)
    elif "ctx" in item:
        item["ctx"] = {key: _plain(value) for key, value in item["ctx"].items()}
    return item


def _plain(value: Any) -> Any:
    """Integral float bounds as ints (``{"le": 20}``, as fal documents), others as JSON."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
