"""When a failed client webhook is tried again: a schedule like Svix's, as a pure function.

The first attempt is made at once; after failed attempt *n* the next waits
``schedule[n - 1]`` seconds (default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h:
``GENQUEUE_WEBHOOK_RETRY_SCHEDULE``), and never less than a 429's or 503's ``Retry-After``
asks. After the last the delivery is abandoned. A 410 Gone stops it at once.
"""

from collections.abc import Sequence

SVIX_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
GONE = 410


def max_attempts(schedule: Sequence[float]) -> int:
    return len(schedule) + 1


def retry_delay(
    attempt: int, schedule: Sequence[float], *, retry_after: float | None = None
) -> float | None:
    """Seconds from failed attempt ``attempt`` (1 = the first) to the next; None: no more."""
    if attempt >= max_attempts(schedule):
        return None
    delay = schedule[attempt - 1]
    return delay if retry_after is None else max(delay, retry_after)
