"""Small numeric helpers: percentiles and ratios that never divide by zero."""

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (``q`` in [0, 100]); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    if low == high:
        return float(ordered[low])
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def mean(values: Sequence[float]) -> float:
    return float(sum(values) / len(values)) if values else 0.0


def ratio(value: float, baseline: float) -> float | None:
    """``value / baseline``, or None when the baseline is zero or missing."""
    if not baseline or not math.isfinite(baseline):
        return None
    return value / baseline


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0
