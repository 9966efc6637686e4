"""B2's baselines, scaled down and then extrapolated (each note says how).

B2a — the naive Celery task (``benchmarks.baseline_app``): submit, then ``while``/``sleep``
until COMPLETED, holding a worker slot the whole time. Same pool and concurrency as genqueue's
worker. It keeps at most ``concurrency`` jobs in flight, so N jobs take about
``ceil(N / in_flight)`` waves of (run time + per-job overhead).

B2b — fal-client's own ``subscribe`` (0.1 s polling), one thread per job, against the simulator.
"""

import math
import time
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any
from unittest import mock

from benchmarks.celery_client import client_app, naive_generations
from benchmarks.observe import PeakSampler, sim_requests, upstream_in_flight
from benchmarks.scale import Scale
from benchmarks.stack import SIM_KEY, Stack
from benchmarks.stats import mean, percentile
from benchmarks.submitter import MODEL


def naive_celery(stack: Stack, scale: Scale) -> dict[str, float]:
    run_time = scale.b2_naive_run_time
    slots = stack.settings.concurrency
    jobs = slots * scale.b2_naive_jobs_per_slot
    stack.reset(run_time=run_time, run_time_jitter=0.0, capacity=0)
    app = client_app(stack.broker_url)
    stack.start_baseline()
    try:
        with PeakSampler(lambda: upstream_in_flight(stack), interval=0.2) as flight:
            seconds, values = naive_generations(
                app,
                count=jobs,
                prompt="naive",
                interval=scale.b2_naive_interval,
                max_seconds=run_time * 5 + 30,
                timeout=scale.phase_timeout,
            )
    finally:
        stack.stop_baseline()
        app.close()
    in_flight = max(flight.peak, 1.0)
    waves = math.ceil(jobs / in_flight)
    overhead = max(0.0, seconds / waves - run_time)
    full_waves = math.ceil(scale.b2_jobs / in_flight)
    return {
        "jobs": jobs,
        "run_time": run_time,
        "poll_interval": scale.b2_naive_interval,
        "seconds": seconds,
        "peak_in_flight": in_flight,
        "per_job_overhead_s": overhead,
        "status_calls_per_job": mean([float(v.get("polls", 0)) for v in values]),
        "extrapolated_seconds": full_waves * (scale.b2_run_time + overhead),
    }


def naive_note(naive: dict[str, float], jobs: int, run_time: float) -> str:
    return (
        f"naive Celery: measured {naive['jobs']:.0f} jobs of {naive['run_time']:g} s "
        f"(sleep {naive['poll_interval']:g} s between polls) in {naive['seconds']:.1f} s with "
        f"at most {naive['peak_in_flight']:.0f} in flight; extrapolated to {jobs} jobs of "
        f"{run_time:g} s as ceil({jobs}/{naive['peak_in_flight']:.0f}) waves × "
        f"({run_time:g} s + {naive['per_job_overhead_s']:.2f} s overhead) = "
        f"{naive['extrapolated_seconds']:.0f} s"
    )


def fal_client_subscribe(stack: Stack, scale: Scale) -> dict[str, float]:
    import fal_client
    import fal_client.client

    run_time = scale.b2_falclient_run_time
    threads = scale.b2_falclient_threads
    stack.reset(run_time=run_time, run_time_jitter=0.0, capacity=0)
    client: Any = fal_client.SyncClient(key=SIM_KEY)

    def one(n: int) -> tuple[str, float]:
        ids: list[str] = []
        client.subscribe(MODEL, {"prompt": f"fal-client {n}"}, on_enqueue=ids.append)
        return ids[0], time.time()

    with (
        mock.patch.object(fal_client.client, "QUEUE_URL_FORMAT", stack.sim_url + "/"),
        ThreadPoolExecutor(threads, thread_name_prefix="fal-subscribe") as pool,
    ):
        futures = [pool.submit(one, n) for n in range(threads)]
        done, pending = wait(futures, timeout=run_time * 3 + scale.phase_timeout)
        if pending:
            raise TimeoutError(f"{len(pending)} fal-client subscriptions did not finish")
        finished = [f.result() for f in done]
    client._client.close()
    upstream = sim_requests(stack, [request_id for request_id, _ in finished])
    calls = [float(upstream[r]["calls"].get("status", 0)) for r, _ in finished if r in upstream]
    lags = [
        at - float(upstream[r]["completed_at"])
        for r, at in finished
        if r in upstream and upstream[r].get("completed_at")
    ]
    measured = mean(calls)
    return {
        "jobs": threads,
        "run_time": run_time,
        "status_calls_per_job": measured,
        "lag_p50_s": percentile(lags, 50),
        "lag_p99_s": percentile(lags, 99),
        "scaled_to": scale.b2_run_time,
        "status_calls_per_job_scaled": measured * scale.b2_run_time / run_time,
    }


def fal_note(fal: dict[str, float], run_time: float) -> str:
    note = (
        f"fal-client: {fal['jobs']:.0f} threads, one subscribe each, jobs of "
        f"{fal['run_time']:g} s: {fal['status_calls_per_job']:.0f} status calls per job"
    )
    if fal["run_time"] != run_time:
        note += (
            f" (×{run_time:g}/{fal['run_time']:g} ≈ {fal['status_calls_per_job_scaled']:.0f} "
            f"for {run_time:g} s jobs, linear)"
        )
    return note
