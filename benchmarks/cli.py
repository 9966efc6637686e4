"""``python -m benchmarks [--quick] [--only B1,B2,B3]``: run, print the table, write the files."""

import argparse
import logging
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import b1_throughput, b2_inflight, b3_api, b4_webhooks, b5_fairness, report
from benchmarks.results import BenchResult
from benchmarks.scale import FULL, QUICK, Scale
from benchmarks.services import (
    postgres_version,
    private_database,
    private_redis,
    redis_version,
)
from benchmarks.stack import Stack, WorkerSettings

log = logging.getLogger("benchmarks")

BENCHMARKS: dict[str, Callable[[Stack, Scale], BenchResult]] = {
    "B1": b1_throughput.run,
    "B2": b2_inflight.run,
    "B3": b3_api.run,
    "B4": b4_webhooks.run,
    "B5": b5_fairness.run,
}


def run_benchmarks(
    *,
    database_url: str,
    broker_url: str,
    scale: Scale,
    only: list[str],
    worker: WorkerSettings,
    log_dir: Path,
) -> list[BenchResult]:
    """Start the stack on a migrated database and a Redis database of our own, run ``only``."""
    stack = Stack(database_url=database_url, broker_url=broker_url, worker=worker, log_dir=log_dir)
    results: list[BenchResult] = []
    try:
        stack.start_simulator()
        stack.start_api()
        for key in only:
            log.info("%s: running (scale %s)", key, scale.name)
            began = time.monotonic()
            result = BENCHMARKS[key](stack, scale)
            result.seconds = time.monotonic() - began
            log.info("%s: done in %.0f s", key, result.seconds)
            results.append(result)
    finally:
        stack.close()
    return results


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller N and shorter jobs")
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated, e.g. B1,B3")
    defaults = WorkerSettings()
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency)
    parser.add_argument("--pool", default=defaults.pool, choices=["prefork", "threads"])
    parser.add_argument("--batch-size", type=int, default=defaults.poll_batch_size)
    parser.add_argument("--tick", type=float, default=defaults.tick_interval)
    parser.add_argument("--api-workers", type=int, default=defaults.api_workers)
    parser.add_argument("--jobs-b1", type=int, help="override B1's N")
    parser.add_argument("--jobs-b2", type=int, help="override B2's N")
    parser.add_argument(
        "--results-md",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write benchmarks/RESULTS.md (default: only after a full run of every benchmark)",
    )
    args = parser.parse_args(argv)
    args.only = [k.strip().upper() for k in args.only.split(",") if k.strip()]
    unknown = set(args.only) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    return args


def log_progress() -> None:
    """A benchmark's progress lines on stderr, with the time; httpx and alembic only warn."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    for noisy in ("httpx", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    log_progress()
    args = _parse(argv)
    scale = QUICK if args.quick else FULL
    if args.jobs_b1:
        scale = replace(scale, b1_jobs=args.jobs_b1, b1_noop_tasks=args.jobs_b1)
    if args.jobs_b2:
        scale = replace(scale, b2_jobs=args.jobs_b2)
    worker = WorkerSettings(
        concurrency=args.concurrency,
        pool=args.pool,
        poll_batch_size=args.batch_size,
        tick_interval=args.tick,
        api_workers=args.api_workers,
    )
    started = datetime.now(UTC)
    machine = report.machine()
    log_dir = report.OUT_DIR / f"logs-{started.strftime('%Y%m%dT%H%M%SZ')}"
    with private_database() as database_url, private_redis() as broker_url:
        meta: dict[str, Any] = {
            "started": started.strftime("%Y-%m-%d %H:%M"),
            "command": " ".join(["python -m benchmarks", *(argv or sys.argv[1:])]),
            "scale": scale.name,
            "sizes": scale.describe(),
            "worker_settings": worker.describe(),
            "machine": machine,
            "postgres": postgres_version(database_url),
            "redis": redis_version(broker_url),
            "logs": str(log_dir),
        }
        results = run_benchmarks(
            database_url=database_url,
            broker_url=broker_url,
            scale=scale,
            only=args.only,
            worker=worker,
            log_dir=log_dir,
        )
    meta["seconds"] = (datetime.now(UTC) - started).total_seconds()
    doc = report.document(results, meta)
    path = report.write_json(doc, started)
    sys.stdout.write(report.table(results) + "\n\n" + report.notes(results) + "\n")
    write_md = args.results_md
    if write_md is None:
        write_md = scale is FULL and args.only == list(BENCHMARKS)
    if write_md:
        report.RESULTS_MD.write_text(report.results_markdown(results, meta))
        log.info("wrote %s", report.RESULTS_MD)
    log.info("wrote %s", path)
    return 0
