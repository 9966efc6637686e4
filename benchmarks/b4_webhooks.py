"""B4 push, not pull: fal's signed webhooks (the simulator signs and POSTs them to the API), with
polling only as the safety net. Every phase is measured in the same run on the same stack:

1. **cold start, polling**: the first ``b2_history_jobs`` jobs of a model on a fresh database,
   no webhooks (B2's cold start);
2. **polling**: ``b4_jobs`` jobs, no webhooks, with that history (B2's measured wave);
3. **webhooks**: the same with ``GENQUEUE_UPSTREAM_WEBHOOK_URL`` set;
4. **webhooks, 30 % dropped**: the same with the simulator dropping a share of the webhooks:
   every job must still complete (the safety net finds the dropped ones).

Detection lag is genqueue's ``completed_at`` minus the simulator's (it includes the simulator's
own delivery: signing and queueing for its sending threads, reported on its own as the time from
a job's end to the POST that got a 200); the webhook's own lag is ``completed_at`` minus the
moment the simulator began that POST. The cold start's polls are planned from the catalogue's
run time for the model (the prior), named in its row: a prior far from the jobs' run time is
the case ``benchmarks.cold_start`` compares with a right one. Calls are the
simulator's per-request counters. API CPU per webhook is the API's CPU in phase 3 minus phase 2
(the same POSTs, no webhooks), divided by the webhooks delivered.
"""

from typing import Any

from benchmarks.observe import job_rows, sim_requests, wait_terminal
from benchmarks.processes import TreeSampler
from benchmarks.results import BenchResult
from benchmarks.scale import Scale
from benchmarks.stack import Stack
from benchmarks.stats import mean, percentile
from benchmarks.submitter import MODEL, post_wave
from models.catalogue import builtin_catalogue

TARGET_LAG_P99 = 0.5
TARGET_STATUS_CALLS = 0.2
TARGET_COLD_LAG_P99 = 3.0
TARGET_COLD_CALLS = 12.0


def run(stack: Stack, scale: Scale) -> BenchResult:
    result = BenchResult("B4", "fal's webhooks, polling as the safety net")
    result.params = {
        "jobs": scale.b4_jobs,
        "run_time": scale.b2_run_time,
        "dropped_share": scale.b4_drop,
        "history_jobs": scale.b2_history_jobs,
    }
    stack.reset(run_time=scale.b2_run_time, run_time_jitter=0.0, capacity=0)
    key = stack.new_key("b4")
    f = result.figures
    f["cold_polling"], _ = _phase(stack, scale, key, scale.b2_history_jobs, "b4-cold")
    f["polling"], polling_cpu = _phase(stack, scale, key, scale.b4_jobs, "b4-poll")
    f["webhooks"], webhook_cpu = _phase(stack, scale, key, scale.b4_jobs, "b4-hook", webhooks=True)
    delivered = f["webhooks"]["webhooks_delivered"]
    f["api_cpu_ms_per_webhook"] = (
        1000.0 * max(0.0, webhook_cpu - polling_cpu) / delivered if delivered else 0.0
    )
    stack.sim.post("/_sim/config", json={"webhook_drop": scale.b4_drop}).raise_for_status()
    try:
        f["dropped"], _ = _phase(stack, scale, key, scale.b4_jobs, "b4-drop", webhooks=True)
    finally:
        stack.sim.post("/_sim/config", json={"webhook_drop": 0.0}).raise_for_status()
    _rows(result, scale)
    return result


def _phase(
    stack: Stack, scale: Scale, key: str, count: int, prompt: str, *, webhooks: bool = False
) -> tuple[dict[str, Any], float]:
    """One wave of ``count`` jobs on freshly started workers: its figures and the API's CPU."""
    before = sum(stack.status_counts().values())
    stack.start_workers(webhooks=webhooks, safety_net=scale.b4_safety_net)
    try:
        with TreeSampler([stack.api.pid], memory=False) as api:
            sub = post_wave(stack.api_port, scale, key=key, count=count, prompt=prompt)
            wait_terminal(stack, before + len(sub.ids), scale.b2_run_time + scale.phase_timeout)
    finally:
        stack.stop_workers()
    return _figures(stack, sub.ids), api.usage.cpu_seconds


def _figures(stack: Stack, ids: list[str]) -> dict[str, Any]:
    wanted = set(ids)
    rows = [r for r in job_rows(stack) if r.id in wanted]
    upstream = sim_requests(stack, [r.upstream_request_id for r in rows if r.upstream_request_id])
    lags: list[float] = []
    arrival_lags: list[float] = []
    deliveries: list[float] = []
    dropped_lags: list[float] = []
    status_calls: list[float] = []
    result_calls: list[float] = []
    delivered = 0
    for row in rows:
        info = upstream.get(row.upstream_request_id or "")
        if info is None:
            continue
        status_calls.append(float(info["calls"].get("status", 0)))
        result_calls.append(float(info["calls"].get("result", 0)))
        tries = info.get("webhooks") or []
        delivered += sum(1 for t in tries if not t["forged"] and t["status"] == 200)
        if row.status == "completed" and row.completed_at and info.get("completed_at"):
            lag = row.completed_at - float(info["completed_at"])
            lags.append(lag)
            sent = [t["sent_at"] for t in tries if not t["forged"] and t["status"] == 200]
            if sent:
                arrival_lags.append(row.completed_at - min(sent))
                deliveries.append(min(sent) - float(info["completed_at"]))
            if any(t["status"] == "dropped" for t in tries):
                dropped_lags.append(lag)
    completed = sum(1 for r in rows if r.status == "completed")
    return {
        "jobs": len(ids),
        "completed": completed,
        "lag_p50_s": percentile(lags, 50),
        "lag_p99_s": percentile(lags, 99),
        "lag_max_s": max(lags, default=0.0),
        "arrival_lag_p50_s": percentile(arrival_lags, 50),
        "arrival_lag_p99_s": percentile(arrival_lags, 99),
        "delivery_p50_s": percentile(deliveries, 50),
        "delivery_p99_s": percentile(deliveries, 99),
        "status_calls_per_job": mean(status_calls),
        "result_calls_per_job": mean(result_calls),
        "webhooks_delivered": delivered,
        "dropped": len(dropped_lags),
        "dropped_lag_p50_s": percentile(dropped_lags, 50),
        "dropped_lag_max_s": max(dropped_lags, default=0.0),
    }


def _rows(result: BenchResult, scale: Scale) -> None:
    f = result.figures
    poll, hook, drop, cold = f["polling"], f["webhooks"], f["dropped"], f["cold_polling"]
    expected = builtin_catalogue()[MODEL].expected_run_seconds
    prior = f"the catalogue's prior {expected:g} s for jobs of {scale.b2_run_time:g} s"
    jobs = scale.b4_jobs
    baseline = "polling, same run (B2's setup)"
    result.row(
        "webhooks: completed",
        hook["completed"],
        f"of {jobs}",
        target=f"all {jobs}",
        met=hook["completed"] == jobs,
    )
    result.row(
        "webhooks: detection lag p50",
        hook["lag_p50_s"],
        "s",
        baseline=baseline,
        baseline_value=poll["lag_p50_s"],
    )
    result.row(
        "webhooks: detection lag p99",
        hook["lag_p99_s"],
        "s",
        baseline=baseline,
        baseline_value=poll["lag_p99_s"],
    )
    result.row(
        "webhooks: from a webhook's POST to its job's end, p50", hook["arrival_lag_p50_s"], "s"
    )
    result.row(
        "webhooks: from a webhook's POST to its job's end, p99",
        hook["arrival_lag_p99_s"],
        "s",
        target=f"≤{TARGET_LAG_P99:g} s",
        met=hook["arrival_lag_p99_s"] <= TARGET_LAG_P99 and hook["completed"] > 0,
    )
    result.row(
        "webhooks: status calls per job",
        hook["status_calls_per_job"],
        "calls",
        baseline=baseline,
        baseline_value=poll["status_calls_per_job"],
        target=f"≤{TARGET_STATUS_CALLS:g}",
        met=hook["status_calls_per_job"] <= TARGET_STATUS_CALLS,
    )
    result.row(
        "webhooks: result fetches per job",
        hook["result_calls_per_job"],
        "calls",
        baseline=baseline,
        baseline_value=poll["result_calls_per_job"],
    )
    result.row(
        "webhooks: the simulator's own delivery (job's end to the POST), p99",
        hook["delivery_p99_s"],
        "s",
    )
    result.row("webhooks: API CPU per webhook", f["api_cpu_ms_per_webhook"], "ms")
    result.row(
        f"{scale.b4_drop:.0%} dropped: completed",
        drop["completed"],
        f"of {jobs}",
        target=f"all {jobs}",
        met=drop["completed"] == jobs,
    )
    result.row(f"{scale.b4_drop:.0%} dropped: detection lag p99", drop["lag_p99_s"], "s")
    result.row(
        f"{scale.b4_drop:.0%} dropped: lag of the dropped ones (max)",
        drop["dropped_lag_max_s"],
        "s",
    )
    result.row(
        f"{scale.b4_drop:.0%} dropped: status calls per job", drop["status_calls_per_job"], "calls"
    )
    result.row(
        f"cold start, polling: detection lag p99 (first {cold['jobs']} jobs; {prior})",
        cold["lag_p99_s"],
        "s",
        target=f"≤{TARGET_COLD_LAG_P99:g} s",
        met=cold["lag_p99_s"] <= TARGET_COLD_LAG_P99,
    )
    result.row(
        "cold start, polling: status calls per job",
        cold["status_calls_per_job"],
        "calls",
        target=f"≤{TARGET_COLD_CALLS:g}",
        met=cold["status_calls_per_job"] <= TARGET_COLD_CALLS,
    )
    result.notes.append(
        f"{jobs} jobs of {scale.b2_run_time:g} s per phase, POSTed through the API; the "
        f"simulator signs each webhook (ED25519) and the API verifies it against the "
        f"simulator's JWKS; {drop['dropped']} webhooks dropped in the drop phase, found by the "
        f"safety net (lag p50 {drop['dropped_lag_p50_s']:.1f} s); polling baseline "
        f"{poll['status_calls_per_job']:.1f} status calls per job"
    )
