"""D1, genqueue over several hosts: B1 (instant upstream) and B2 (slow jobs in flight) with one
worker host and with two, and B1 on RabbitMQ beside B1 on Redis, in one run on one cluster of
network namespaces (``benchmarks.cluster``; root). The hosts share this machine's cores, so two
worker hosts are a figure of correctness under distribution and of CPU per job, not a speedup.

``python -m benchmarks.d1_distributed [--quick] [--results-md]``"""

import argparse
import logging
import os
import sys
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import d1_report, report
from benchmarks.b1_throughput import INSTANT
from benchmarks.b2_inflight import upstream_figures
from benchmarks.cli import log_progress
from benchmarks.cluster import Cluster, cluster
from benchmarks.distribution import correctness
from benchmarks.observe import PeakSampler, job_rows, upstream_in_flight, wait_terminal
from benchmarks.results import BenchResult
from benchmarks.scale import FULL, QUICK, Scale
from benchmarks.stack import WorkerSettings
from benchmarks.stats import percentile, rate
from benchmarks.submitter import Submission, submit_generations
from sandbox.netns import WORKER_HOSTS

log = logging.getLogger("benchmarks.d1")


@dataclass(frozen=True)
class Phase:
    bench: str
    """``B1`` or ``B2``."""
    broker: str
    """``redis`` or ``rabbitmq``."""
    hosts: int
    """Worker hosts: 1 (``w1``) or 2 (``w1`` and ``w2``)."""

    @property
    def key(self) -> str:
        return f"{self.bench} {self.broker} {self.hosts}h"

    @property
    def prompt(self) -> str:
        return f"d1-{self.bench}-{self.broker}-{self.hosts}h".lower()


PHASES = (
    Phase("B1", "redis", 1),
    Phase("B1", "redis", 2),
    Phase("B2", "redis", 1),
    Phase("B2", "redis", 2),
    Phase("B1", "rabbitmq", 1),
    Phase("B1", "rabbitmq", 2),
)


def run(
    scale: Scale,
    settings: WorkerSettings,
    log_dir: Path,
    phases: tuple[Phase, ...] = PHASES,
    *,
    rabbitmq_early: bool = False,
) -> BenchResult:
    """Every phase on one cluster, grouped by broker (Redis first); the figures by phase key.
    ``rabbitmq_early``: boot the RabbitMQ node beside the first phases (tests only: it takes
    their CPU)."""
    result = BenchResult("D1", "B1 and B2 over several hosts; B1 on RabbitMQ beside Redis")
    result.params = {
        "b1_jobs": scale.b1_jobs,
        "b2_jobs": scale.b2_jobs,
        "b2_run_time": scale.b2_run_time,
        "phases": [p.key for p in phases],
    }
    with cluster(settings, log_dir, rabbitmq_early=rabbitmq_early) as hosts:
        for broker in dict.fromkeys(p.broker for p in phases):
            log.info("D1: the API and the workers on %s", broker)
            hosts.use_broker(broker)
            for phase in (p for p in phases if p.broker == broker):
                log.info("D1: %s", phase.key)
                began = time.monotonic()
                measure = _b1 if phase.bench == "B1" else _b2
                figures = measure(hosts, scale, phase)
                figures["seconds"] = round(time.monotonic() - began, 1)
                result.figures[phase.key] = figures
    d1_report.rows(result)
    return result


def _wave(cluster: Cluster, scale: Scale, key: str, count: int, prompt: str) -> Submission:
    """``count`` generations POSTed to the API host; returns once all (and earlier) ended."""
    before = sum(cluster.status_counts().values())
    sub = submit_generations(
        host=cluster.api_host,
        port=cluster.api_port,
        key=key,
        count=count,
        concurrency=scale.submit_concurrency,
        prompt=prompt,
        time_limit=scale.phase_timeout,
    )
    wait_terminal(cluster, before + len(sub.ids), scale.b2_run_time + scale.phase_timeout)
    return sub


def _b1(cluster: Cluster, scale: Scale, phase: Phase) -> dict[str, Any]:
    cluster.reset(**INSTANT)
    key = cluster.new_key("d1-b1")
    cluster.start_workers(WORKER_HOSTS[: phase.hosts])
    try:
        if scale.warmup_jobs:
            _wave(cluster, scale, key, scale.warmup_jobs, f"{phase.prompt}-warm-up")
            cluster.reset()
        load = os.getloadavg()
        with cluster.budget() as budget:
            sub = _wave(cluster, scale, key, scale.b1_jobs, phase.prompt)
    finally:
        cluster.stop_workers()
    wanted = set(sub.ids)
    rows = [r for r in job_rows(cluster) if r.id in wanted and r.completed_at]
    last = max((r.completed_at or 0.0 for r in rows), default=sub.started_at)
    latencies = [(r.completed_at or 0.0) - r.created_at for r in rows]
    return {
        "generations_per_second": rate(len(rows), last - sub.started_at),
        "latency_p50_s": percentile(latencies, 50),
        "latency_p99_s": percentile(latencies, 99),
        "post_errors": sub.errors,
        "cpu_ms_per_generation": budget.per_item_ms(len(rows)),
        "machine_busy_percent": round(budget.machine_busy_percent, 1),
        "load_average": [round(x, 2) for x in load],
        **correctness(cluster, sub.ids, phase.prompt),
    }


def _b2(cluster: Cluster, scale: Scale, phase: Phase) -> dict[str, Any]:
    cluster.reset(run_time=scale.b2_run_time, run_time_jitter=0.0, capacity=0)
    key = cluster.new_key("d1-b2")
    hosts = WORKER_HOSTS[: phase.hosts]
    if scale.b2_history_jobs:  # the run-time history a running system has (as B2 does)
        cluster.start_workers(hosts)
        try:
            _wave(cluster, scale, key, scale.b2_history_jobs, f"{phase.prompt}-history")
        finally:
            cluster.stop_workers()
    cluster.start_workers(hosts)
    try:
        load = os.getloadavg()
        with (
            cluster.budget() as budget,
            PeakSampler(
                lambda: upstream_in_flight(cluster), interval=scale.sample_interval
            ) as peak,
        ):
            sub = _wave(cluster, scale, key, scale.b2_jobs, phase.prompt)
    finally:
        cluster.stop_workers()
    figures = upstream_figures(cluster, sub.ids)
    last = figures.pop("last_completed_at") or sub.started_at
    checks = correctness(cluster, sub.ids, phase.prompt)
    return {
        **figures,
        **checks,
        "peak_in_flight": peak.peak,
        "total_seconds": last - sub.started_at,
        "post_errors": sub.errors,
        "cpu_ms_per_job": budget.per_item_ms(checks["terminal"]),
        "machine_busy_percent": round(budget.machine_busy_percent, 1),
        "load_average": [round(x, 2) for x in load],
    }


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.d1_distributed", description=__doc__
    )
    parser.add_argument("--quick", action="store_true", help="smaller N and shorter jobs")
    parser.add_argument("--jobs-b1", type=int, help="override B1's N")
    parser.add_argument("--jobs-b2", type=int, help="override B2's N")
    parser.add_argument("--results-md", action="store_true", help="write D1's RESULTS.md section")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    log_progress()
    args = _parse(argv)
    scale = QUICK if args.quick else FULL
    if args.jobs_b1:
        scale = replace(scale, b1_jobs=args.jobs_b1)
    if args.jobs_b2:
        scale = replace(scale, b2_jobs=args.jobs_b2)
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    settings = WorkerSettings()
    meta: dict[str, Any] = {
        "started": started.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(["python -m benchmarks.d1_distributed", *(argv or sys.argv[1:])]),
        "scale": f"d1-{scale.name}",
        "sizes": scale.describe(),
        "worker_settings": settings.describe(),
        "machine": report.machine(),
    }
    result = run(scale, settings, report.OUT_DIR / f"logs-d1-{stamp}")
    meta["seconds"] = (datetime.now(UTC) - started).total_seconds()
    meta["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    path = report.write_json(report.document([result], meta), started)
    sys.stdout.write(report.table([result]) + "\n\n" + report.notes([result]) + "\n")
    if args.results_md:
        d1_report.write_section(result, meta)
        log.info("wrote %s", report.RESULTS_MD)
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
