"""Each model's recent run times, learned from the jobs it finished (feeds poll scheduling)."""

import threading
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.status import GenerationStatus
from models.tables import Generation
from worker.backoff import RunTimeEstimate
from worker.context import WorkerContext

WINDOW = timedelta(hours=1)
SAMPLE_LIMIT = 200
CACHE_SECONDS = 15.0

_cache: dict[tuple[int, str], tuple[float, RunTimeEstimate | None]] = {}
_lock = threading.Lock()


def quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile of an ascending list (``q`` in [0, 1])."""
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


def estimate_from(durations: Iterable[float]) -> RunTimeEstimate | None:
    values = sorted(d for d in durations if d >= 0)
    if not values:
        return None
    return RunTimeEstimate(
        p10=quantile(values, 0.10),
        p50=quantile(values, 0.50),
        p90=quantile(values, 0.90),
        samples=len(values),
    )


def estimates_for(
    ctx: WorkerContext, models: set[str], *, session: Session | None = None
) -> dict[str, RunTimeEstimate]:
    """Recent run times by model (cached a while). ``session``: read through the caller's
    transaction (a claim holding SQLite's write lock must not wait on a second connection)."""
    found: dict[str, RunTimeEstimate] = {}
    mono = time.monotonic()
    for model in models:
        key = (id(ctx.sessions), model)
        with _lock:
            cached = _cache.get(key)
        if cached is None or mono - cached[0] > CACHE_SECONDS:
            cached = (mono, _load(ctx, model, session))
            with _lock:
                _cache[key] = cached
        if cached[1] is not None:
            found[model] = cached[1]
    return found


def _load(ctx: WorkerContext, model: str, session: Session | None) -> RunTimeEstimate | None:
    if session is None:
        with ctx.sessions() as own:
            return _load(ctx, model, own)
    since = ctx.clock() - WINDOW
    rows = session.scalars(
        select(Generation.run_seconds)
        .where(
            Generation.model == model,
            Generation.status == GenerationStatus.COMPLETED.value,
            Generation.completed_at >= since,
            Generation.run_seconds.is_not(None),
        )
        .order_by(Generation.completed_at.desc())
        .limit(SAMPLE_LIMIT)
    ).all()
    return estimate_from(r for r in rows if r is not None)
