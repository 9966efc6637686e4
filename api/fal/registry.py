"""The API's side of the model catalogue (``models.catalogue``): an input checked against its
model's schema and refused as a 422, and the message for a model genqueue does not serve.

The schemas are data; the seed's Kontext family keeps its strict rules there (no ``"2"`` for an
integer, no ``"true"`` for a boolean, unknown fields rejected, an integer ``safety_tolerance``
stored as its string), and the refusals keep pydantic's types and messages.
"""

import json
import re
from collections.abc import Sequence
from typing import Any

from api.errors import ValidationFailed, invalid
from models.catalogue import Catalogue, InputInvalid, builtin_catalogue
from models.catalogue.loader import ENDPOINT_ID_PATTERN

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


def serves(catalogue: Catalogue, endpoint_id: str, *, allow_unlisted: bool) -> bool:
    """Whether genqueue takes jobs for this model: a catalogue entry, or, with
    ``GENQUEUE_ALLOW_UNLISTED_MODELS``, any well-formed endpoint id (``owner/app[/path…]``).

    A ``requests`` segment is never a model's: it is fal's queue URL of a request
    (``owner/app/requests/ID/status``), so a stray POST there is not a submit."""
    if endpoint_id in catalogue:
        return True
    return (
        allow_unlisted
        and re.fullmatch(ENDPOINT_ID_PATTERN, endpoint_id) is not None
        and "requests" not in endpoint_id.split("/")
    )


def validate_input(
    catalogue: Catalogue,
    endpoint_id: str,
    payload: Any,
    *,
    loc: Sequence[str | int],
    max_unlisted_bytes: int = 0,
) -> dict[str, Any]:
    """The input as it will be stored and sent: validated against the model's schema, defaults
    applied, ``null`` dropped. Raises :class:`ValidationFailed` (422) naming the fields.

    A model not in the catalogue (passed by :func:`serves`) has no schema to check against:
    its input is sent as given once it is a JSON object of at most ``max_unlisted_bytes``
    (as compact JSON); upstream judges the rest, and its 422 is the job's failure."""
    if endpoint_id not in catalogue:
        return _unlisted_input(payload, list(loc), max_unlisted_bytes)
    try:
        return catalogue.check_input(endpoint_id, payload, loc=tuple(loc))
    except InputInvalid as exc:
        raise ValidationFailed(exc.items) from None


def _unlisted_input(payload: Any, loc: list[str | int], limit: int) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise invalid(loc, "Input should be a valid dictionary", type="dict_type", input=payload)
    size = len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    if size > limit:
        raise invalid(
            loc,
            f"Input is {size} bytes of JSON; an unlisted model's input may be {limit} at most",
            type="too_long",
            ctx={"max_length": limit, "actual_length": size},
        )
    return payload
