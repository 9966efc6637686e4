"""What a job costs: each model's unit price (USD), and how many units an input asks for.

The prices are fal's list prices for the Kontext family (per image) as of November 2026;
operators override them with ``GENQUEUE_MODEL_PRICES`` (JSON, ``{"endpoint id": usd per
unit}``), for their own rates or a model added later. A job's price is fixed at create: it
records ``unit_price`` and ``estimated_cost`` (price × the images asked for); at its end the
worker records ``final_cost``, the upstream's billable units (``x-fal-billable-units``) times
that price where upstream reports them, else the estimate for a completed job and 0 for one
that failed or was cancelled; a job never sent upstream is not charged (``final_cost`` null).
"""

from collections.abc import Mapping
from typing import Any

PRICES: dict[str, float] = {
    "fal-ai/flux-pro/kontext/text-to-image": 0.04,
    "fal-ai/flux-pro/kontext/max/text-to-image": 0.08,
    "fal-ai/flux-pro/kontext": 0.04,
    "fal-ai/flux-pro/kontext/max": 0.08,
    "fal-ai/flux-pro/kontext/multi": 0.04,
    "fal-ai/flux-pro/kontext/max/multi": 0.08,
}
"""USD per image, by endpoint id."""


def unit_price(model: str, overrides: Mapping[str, float] | None = None) -> float | None:
    """The model's price per unit; None for a model with no price (its jobs cost nothing
    known, and no budget counts them)."""
    if overrides and model in overrides:
        return overrides[model]
    return PRICES.get(model)


def units_asked(input: Mapping[str, Any]) -> int:
    """Units an input asks for: its images (``num_images``, default 1)."""
    value = input.get("num_images", 1)
    return value if isinstance(value, int) and value > 0 else 1


def estimate(
    model: str, input: Mapping[str, Any], overrides: Mapping[str, float] | None = None
) -> tuple[float | None, float | None]:
    """(unit price, estimated cost) of a new job."""
    price = unit_price(model, overrides)
    return price, None if price is None else round(price * units_asked(input), 6)
