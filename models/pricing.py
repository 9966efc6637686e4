"""What a job costs: its model's unit price (USD), and how many units an input asks for.

Each catalogue entry (``models/catalogue``) carries its price and what a unit is: an image for
the FLUX family (fal's list prices, November 2026), a second of video, 1000 characters of
speech. Operators override prices with ``GENQUEUE_MODEL_PRICES`` (JSON, ``{"endpoint id": usd
per unit}``) for their own rates. A job's price is fixed at create: it records ``unit_price`` and
``estimated_cost`` (price × the units asked for); at its end the worker records ``final_cost``,
the upstream's billable units (``x-fal-billable-units``) times that price where upstream reports
them, else the estimate for a completed job and 0 for one that failed or was cancelled; a job
never sent upstream is not charged (``final_cost`` null).
"""

from collections.abc import Mapping
from typing import Any

from models.catalogue import Catalogue, builtin_catalogue

PRICES: dict[str, float] = {
    endpoint_id: entry.unit_price
    for endpoint_id, entry in builtin_catalogue().items()
    if entry.unit_price is not None
}
"""USD per unit of the built-in models, by endpoint id."""


def unit_price(
    model: str,
    overrides: Mapping[str, float] | None = None,
    catalogue: Catalogue | None = None,
) -> float | None:
    """The model's price per unit; None for a model with no price (its jobs cost nothing
    known, and no budget counts them)."""
    if overrides and model in overrides:
        return overrides[model]
    entry = (builtin_catalogue() if catalogue is None else catalogue).get(model)
    return None if entry is None else entry.unit_price


def units_asked(model: str, input: Mapping[str, Any], catalogue: Catalogue | None = None) -> int:
    """Units an input asks for (its entry says which field counts them); 1 for a model not
    in the catalogue."""
    entry = (builtin_catalogue() if catalogue is None else catalogue).get(model)
    return 1 if entry is None else entry.units_asked(input)


def estimate(
    model: str,
    input: Mapping[str, Any],
    overrides: Mapping[str, float] | None = None,
    catalogue: Catalogue | None = None,
) -> tuple[float | None, float | None]:
    """(unit price, estimated cost) of a new job."""
    price = unit_price(model, overrides, catalogue)
    if price is None:
        return None, None
    return price, round(price * units_asked(model, input, catalogue), 6)
