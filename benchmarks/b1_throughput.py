"""B1 throughput: the upstream answers at once; how many generations per second go end to end
(first POST to the last ``completed_at`` in the database), beside raw Celery no-op round trips
on the same broker and worker settings."""

from benchmarks.budget import machine_busy_seconds, stack_budget
from benchmarks.celery_client import client_app, noop_round_trips
from benchmarks.observe import job_rows, wait_terminal
from benchmarks.results import BenchResult
from benchmarks.scale import Scale
from benchmarks.stack import Stack
from benchmarks.stats import percentile, rate, ratio
from benchmarks.submitter import Submission, post_wave

TARGET_RATE = 150.0
TARGET_RATIO = 0.3
INSTANT = {"run_time": 0.0, "run_time_jitter": 0.0, "capacity": 0}


def run(stack: Stack, scale: Scale) -> BenchResult:
    result = BenchResult("B1", "Throughput (instant upstream)")
    result.params = {"jobs": scale.b1_jobs, "noop_tasks": scale.b1_noop_tasks, **INSTANT}
    genqueue = _genqueue(stack, scale, result)
    raw = _raw_celery(stack, scale, result)
    result.row(
        "end-to-end generations/s",
        genqueue,
        "gen/s",
        baseline="raw Celery no-op round trips",
        baseline_value=raw,
        target=f"≥{TARGET_RATE:g} gen/s and ≥{TARGET_RATIO:g}× raw",
        met=genqueue >= TARGET_RATE and (ratio(genqueue, raw) or 0) >= TARGET_RATIO,
    )
    figures = result.figures
    result.row("API accept rate while the worker runs", figures["accepted_per_second"], "req/s")
    result.row("end-to-end latency p50", figures["latency_p50_s"], "s")
    result.row("end-to-end latency p99", figures["latency_p99_s"], "s")
    cpu = figures["cpu_ms_per_generation"]
    if cpu:
        per_task = figures["raw_celery_cpu_ms_per_task"]
        result.row(
            "machine CPU per generation (all processes)",
            cpu["total (machine)"],
            "ms",
            baseline="raw Celery, machine CPU per no-op round trip",
            baseline_value=per_task,
        )
        result.notes.append(
            f"machine {figures['machine_busy_percent']:.0f}% busy during the run; CPU ms per "
            "generation by component: "
            + ", ".join(f"{name} {ms:g}" for name, ms in cpu.items() if "total" not in name)
        )
    result.notes.append(
        "raw Celery: the same Celery configuration, pool and concurrency, tasks sent as fast as "
        "possible and every result collected from a Redis result backend"
    )
    return result


def _genqueue(stack: Stack, scale: Scale, result: BenchResult) -> float:
    stack.reset(**INSTANT)
    key = stack.new_key("b1")
    stack.start_workers()
    try:
        if scale.warmup_jobs:
            _submit_and_wait(stack, scale, key, scale.warmup_jobs, "warm-up")
            stack.reset()
        with stack_budget(stack) as budget:
            sub, counts = _submit_and_wait(stack, scale, key, scale.b1_jobs, "b1")
    finally:
        stack.stop_workers()
    rows = [r for r in job_rows(stack) if r.status == "completed" and r.completed_at]
    last = max((r.completed_at or 0.0 for r in rows), default=sub.started_at)
    latencies = [(r.completed_at or 0.0) - r.created_at for r in rows]
    throughput = rate(len(rows), last - sub.started_at)
    result.figures.update(
        {
            "generations_per_second": throughput,
            "completed": len(rows),
            "statuses": counts,
            "post_errors": sub.errors,
            "seconds": last - sub.started_at,
            "accepted_per_second": sub.accepted_per_second,
            "latency_p50_s": percentile(latencies, 50),
            "latency_p99_s": percentile(latencies, 99),
            "cpu_ms_per_generation": budget.per_item_ms(len(rows)),
            "machine_busy_percent": budget.machine_busy_percent,
            "worker_peak_rss_mb": budget.samplers["worker"].usage.peak_rss_mb,
        }
    )
    return throughput


def _submit_and_wait(
    stack: Stack, scale: Scale, key: str, count: int, prompt: str
) -> tuple[Submission, dict[str, int]]:
    sub = post_wave(stack.api_port, scale, key=key, count=count, prompt=prompt)
    counts = wait_terminal(stack, len(sub.ids), scale.phase_timeout)
    return sub, counts


def _raw_celery(stack: Stack, scale: Scale, result: BenchResult) -> float:
    stack.reset()
    app = client_app(stack.broker_url)
    stack.start_baseline()
    try:
        if scale.warmup_jobs:
            noop_round_trips(app, scale.warmup_jobs, scale.phase_timeout)
        busy = machine_busy_seconds()
        seconds = noop_round_trips(app, scale.b1_noop_tasks, scale.phase_timeout)
        busy = machine_busy_seconds() - busy
        result.figures["raw_celery_seconds"] = seconds
        result.figures["raw_celery_cpu_ms_per_task"] = 1000 * busy / scale.b1_noop_tasks
    finally:
        stack.stop_baseline()
        app.close()
    tasks_per_second = rate(scale.b1_noop_tasks, seconds)
    result.figures["raw_celery_tasks_per_second"] = tasks_per_second
    return tasks_per_second
