"""B2 many slow jobs in flight: every upstream job runs ``run_time`` seconds with unlimited
capacity. How fast does genqueue notice each finish (detection lag), how many status calls
does that cost, and what does the worker spend (peak RSS, CPU)? Baselines: B2a and B2b in
``b2_baselines``."""

from typing import Any

from benchmarks import b2_baselines
from benchmarks.observe import (
    Observed,
    PeakSampler,
    job_rows,
    poll_backlog,
    sim_requests,
    upstream_in_flight,
    wait_terminal,
)
from benchmarks.processes import TreeSampler
from benchmarks.results import BenchResult
from benchmarks.scale import Scale
from benchmarks.stack import Stack
from benchmarks.stats import mean, percentile
from benchmarks.submitter import Submission, post_wave

TARGET_LAG_P99 = 5.0
TARGET_CALLS = 15.0
TARGET_RSS_MB = 400.0


def run(stack: Stack, scale: Scale) -> BenchResult:
    result = BenchResult("B2", "Many slow jobs in flight")
    result.params = {
        "jobs": scale.b2_jobs,
        "run_time": scale.b2_run_time,
        "capacity": "unlimited",
    }
    _genqueue(stack, scale, result)
    naive = b2_baselines.naive_celery(stack, scale)
    fal = b2_baselines.fal_client_subscribe(stack, scale)
    result.figures["naive_celery"] = naive
    result.figures["fal_client"] = fal
    _rows(result, scale, naive, fal)
    return result


def _genqueue(stack: Stack, scale: Scale, result: BenchResult) -> None:
    run_time = scale.b2_run_time
    stack.reset(run_time=run_time, run_time_jitter=0.0, capacity=0)
    key = stack.new_key("b2")
    if scale.b2_history_jobs:
        # A running system knows the model's run times; a fresh database does not. Run a first
        # wave (measured as the cold start), then restart the worker so the measured wave
        # starts from fresh processes that read that history from the database.
        stack.start_workers()
        try:
            cold = _wave(stack, scale, key, scale.b2_history_jobs, "b2-history")
        finally:
            stack.stop_workers()
        result.figures["cold_start"] = upstream_figures(stack, cold.ids)
    stack.start_workers()
    every = scale.sample_interval
    try:
        with (
            TreeSampler([stack.worker.pid]) as worker,
            TreeSampler([stack.beat.pid], memory=False) as beat,
            PeakSampler(lambda: upstream_in_flight(stack), interval=every) as flight,
            PeakSampler(lambda: poll_backlog(stack), interval=every) as backlog,
        ):
            sub = _wave(stack, scale, key, scale.b2_jobs, "b2")
    finally:
        stack.stop_workers()
    figures = upstream_figures(stack, sub.ids)
    last = figures.pop("last_completed_at") or sub.started_at
    result.figures.update(
        {
            **figures,
            "post_errors": sub.errors,
            "submit_seconds": sub.seconds,
            "accepted_per_second": sub.accepted_per_second,
            "total_seconds": last - sub.started_at,
            "peak_in_flight": flight.peak,
            "peak_poll_backlog_s": backlog.peak,
            "worker_peak_rss_mb": worker.usage.peak_rss_mb,
            "worker_peak_pss_mb": worker.usage.peak_pss_mb,
            "worker_processes": worker.usage.peak_processes,
            "worker_cpu_seconds": worker.usage.cpu_seconds,
            "worker_cpu_percent": worker.usage.cpu_percent,
            "beat_cpu_seconds": beat.usage.cpu_seconds,
        }
    )


def _wave(stack: Stack, scale: Scale, key: str, count: int, prompt: str) -> Submission:
    """POST ``count`` generations and wait until they all ended (earlier waves have ended)."""
    before = sum(stack.status_counts().values())
    sub = post_wave(stack.api_port, scale, key=key, count=count, prompt=prompt)
    wait_terminal(stack, before + len(sub.ids), scale.b2_run_time + scale.phase_timeout)
    return sub


def upstream_figures(stack: Observed, ids: list[str]) -> dict[str, Any]:
    """Detection lag (our ``completed_at`` minus the simulator's) and status calls per job."""
    wanted = set(ids)
    rows = [r for r in job_rows(stack) if r.id in wanted]
    upstream = sim_requests(stack, [r.upstream_request_id for r in rows if r.upstream_request_id])
    lags: list[float] = []
    calls: list[float] = []
    by_finish: list[tuple[float, float]] = []
    found: list[float] = []
    recorded: list[float] = []
    for row in rows:
        info = upstream.get(row.upstream_request_id or "")
        if info is None:
            continue
        calls.append(float(info["calls"].get("status", 0)))
        if row.status == "completed" and row.completed_at and info.get("completed_at"):
            finished = float(info["completed_at"])
            lags.append(row.completed_at - finished)
            by_finish.append((finished, lags[-1]))
            seen = _first_status_after(info, finished)
            if seen is not None:
                found.append(seen - finished)
                recorded.append(row.completed_at - seen)
    statuses: dict[str, int] = {}
    for row in rows:
        statuses[row.status] = statuses.get(row.status, 0) + 1
    return {
        "jobs": len(ids),
        "completed": statuses.get("completed", 0),
        "statuses": statuses,
        "lag_p50_s": percentile(lags, 50),
        "lag_p99_s": percentile(lags, 99),
        "lag_max_s": max(lags, default=0.0),
        "status_calls_per_job": mean(calls),
        "status_calls_p99": percentile(calls, 99),
        "status_calls_max": max(calls, default=0.0),
        "lag_p99_by_finish_decile_s": _deciles(by_finish),
        "found_p50_s": percentile(found, 50),
        "found_p99_s": percentile(found, 99),
        "recorded_p50_s": percentile(recorded, 50),
        "recorded_p99_s": percentile(recorded, 99),
        "last_completed_at": max((r.completed_at or 0.0 for r in rows), default=None),
    }


def _first_status_after(info: dict[str, Any], finished: float) -> float | None:
    """When the first status call after the upstream finish reached the simulator: the lag
    splits into finding the finish (this minus the finish: the poll's plan, dispatch, broker,
    a free worker slot) and recording it (``completed_at`` minus this: the result call and
    the write)."""
    return min(
        (
            float(c["at"])
            for c in info.get("call_log", [])
            if c["op"] == "status" and float(c["at"]) >= finished
        ),
        default=None,
    )


def _deciles(by_finish: list[tuple[float, float]]) -> list[float]:
    """p99 detection lag of the jobs in each tenth of the run, ordered by upstream finish."""
    ordered = [lag for _, lag in sorted(by_finish)]
    size = len(ordered) / 10
    return [
        round(percentile(ordered[int(i * size) : int((i + 1) * size)], 99), 2)
        for i in range(10)
        if int((i + 1) * size) > int(i * size)
    ]


def _rows(
    result: BenchResult, scale: Scale, naive: dict[str, float], fal: dict[str, float]
) -> None:
    f = result.figures
    jobs = scale.b2_jobs
    result.row(
        "completed",
        f["completed"],
        f"of {jobs}",
        target=f"all {jobs}",
        met=f["completed"] == jobs,
    )
    result.row(
        "jobs in flight upstream (peak)",
        f["peak_in_flight"],
        "jobs",
        baseline="naive Celery while/sleep task, same concurrency",
        baseline_value=naive["peak_in_flight"],
    )
    result.row(
        "time for all jobs (first POST to last completed)",
        f["total_seconds"],
        "s",
        baseline="naive Celery, extrapolated",
        baseline_value=naive["extrapolated_seconds"],
    )
    result.row(
        "detection lag p50",
        f["lag_p50_s"],
        "s",
        baseline="fal-client subscribe (0.1 s polling)",
        baseline_value=fal["lag_p50_s"],
    )
    result.row(
        "detection lag p99",
        f["lag_p99_s"],
        "s",
        baseline="fal-client subscribe (0.1 s polling)",
        baseline_value=fal["lag_p99_s"],
        target=f"≤{TARGET_LAG_P99:g} s",
        met=f["lag_p99_s"] <= TARGET_LAG_P99 and f["completed"] > 0,
    )
    result.row(
        "upstream status calls per job",
        f["status_calls_per_job"],
        "calls",
        baseline="fal-client subscribe (0.1 s polling)",
        baseline_value=fal["status_calls_per_job_scaled"],
        target=f"≤{TARGET_CALLS:g}",
        met=f["status_calls_per_job"] <= TARGET_CALLS,
    )
    result.row(
        "worker peak RSS (all processes)",
        f["worker_peak_rss_mb"],
        "MB",
        target=f"≤{TARGET_RSS_MB:g} MB",
        met=f["worker_peak_rss_mb"] <= TARGET_RSS_MB,
    )
    result.row("worker CPU (average over the run)", f["worker_cpu_percent"], "% of a core")
    cold = f.get("cold_start")
    if cold:
        result.row(
            f"cold start: detection lag p99 (first {cold['jobs']} jobs, no history)",
            cold["lag_p99_s"],
            "s",
        )
        result.row("cold start: status calls per job", cold["status_calls_per_job"], "calls")
    result.notes.extend(
        [
            f"genqueue: {jobs} jobs POSTed through the API in {f['submit_seconds']:.1f} s, "
            f"after {scale.b2_history_jobs} jobs of the same run time had finished (the "
            "run-time history a running system has; their own figures are the cold-start rows) "
            "and the worker was restarted; "
            f"worker PSS peak {f['worker_peak_pss_mb']:.0f} MB "
            f"(RSS counts pages shared by the prefork children once per process)",
            b2_baselines.naive_note(naive, jobs, scale.b2_run_time),
            b2_baselines.fal_note(fal, scale.b2_run_time),
        ]
    )
