"""The API's side of the model catalogue (``models.catalogue``): an input checked against its
model's schema and refused as a 422, and the message for a model genqueue does not serve.

The schemas are data; the seed's Kontext family keeps its strict rules there (no ``"2"`` for an
integer, no ``"true"`` for a boolean, unknown fields rejected, an integer ``safety_tolerance``
stored as its string), and the refusals keep pydantic's types and messages.
"""

from collections.abc import Sequence
from typing import Any

from api.errors import ValidationFailed
from models.catalogue import Catalogue, InputInvalid, builtin_catalogue

SEED_MODEL = "fal-ai/flux-pro/kontext/text-to-image"
SEED_EXAMPLE: dict[str, Any] = dict(builtin_catalogue()[SEED_MODEL].example)
"""The request example of the product owner's seed document, verbatim."""
_SEED_FIELDS = builtin_catalogue()[SEED_MODEL].input_schema["properties"]
MAX_PROMPT_LENGTH: int = _SEED_FIELDS["prompt"]["maxLength"]
"""Characters in a Kontext prompt. fal's schema sets no bound; its text encoder reads a few
hundred tokens, so this only stops absurd inputs (a 3.9 MB prompt) from being stored and sent."""
MAX_IMAGE_URLS: int = builtin_catalogue()["fal-ai/flux-pro/kontext/multi"].input_schema[
    "properties"
]["image_urls"]["maxItems"]
"""Images in one Kontext ``image_urls`` list (the multi-image endpoints combine a handful)."""


def unknown_model_message(model_id: str, catalogue: Catalogue) -> str:
    return f"Unknown model '{model_id}'. Supported models: {', '.join(catalogue)}"


def validate_input(
    catalogue: Catalogue, endpoint_id: str, payload: Any, *, loc: Sequence[str | int]
) -> dict[str, Any]:
    """The input as it will be stored and sent: validated against the model's schema, defaults
    applied, ``null`` dropped. Raises :class:`ValidationFailed` (422) naming the fields."""
    try:
        return catalogue.check_input(endpoint_id, payload, loc=tuple(loc))
    except InputInvalid as exc:
        raise ValidationFailed(exc.items) from None
