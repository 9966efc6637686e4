"""B2's cold start alone: the first jobs of a model on a fresh database, no webhooks, polled
with no run-time history (B2 and B4 measure it only inside their long runs).

``python -m benchmarks.cold_start LABEL [--models-file F] [--jobs 20] [--run-time 30]`` starts
the stack (the simulator running every job ``--run-time`` s), POSTs ``--jobs`` jobs at once and
prints one JSON line: detection lag p50/p99/max and status calls per job, as B2 counts them. The
worker reads ``--models-file`` (``GENQUEUE_MODELS_FILE``): an entry whose
``expected_run_seconds`` is the simulator's run time is the prior a right catalogue gives.
The stack runs the code of the tree this module is imported from (its ``PYTHONPATH``), so the
same command on an older checkout is the before.
"""

import argparse
import json
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.b2_inflight import upstream_figures
from benchmarks.observe import wait_terminal
from benchmarks.report import OUT_DIR
from benchmarks.scale import QUICK
from benchmarks.services import private_database, private_redis
from benchmarks.stack import Stack, WorkerSettings
from benchmarks.submitter import post_wave


def measure(
    label: str, *, jobs: int, run_time: float, models_file: str | None, log_dir: Path | None = None
) -> dict[str, Any]:
    scale = replace(QUICK, phase_timeout=300.0)
    with private_database() as database_url, private_redis() as broker_url:
        stack = Stack(
            database_url=database_url,
            broker_url=broker_url,
            worker=WorkerSettings(),
            log_dir=log_dir or OUT_DIR / f"cold-start-{label}",
        )
        try:
            stack.start_simulator()
            stack.start_api()
            stack.reset(run_time=run_time, run_time_jitter=0.0, capacity=0)
            key = stack.new_key("cold")
            if models_file:
                stack.env["GENQUEUE_MODELS_FILE"] = models_file  # the worker's, not the API's
            stack.start_workers()
            try:
                sub = post_wave(stack.api_port, scale, key=key, count=jobs, prompt=label)
                wait_terminal(stack, len(sub.ids), run_time + scale.phase_timeout)
            finally:
                stack.stop_workers()
            figures = upstream_figures(stack, sub.ids)
        finally:
            stack.close()
    figures.pop("lag_p99_by_finish_decile_s", None)
    return {"label": label, "run_time": run_time, **figures}


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cold_start")
    parser.add_argument("label")
    parser.add_argument("--models-file")
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--run-time", type=float, default=30.0)
    args = parser.parse_args(argv)
    found = measure(
        args.label, jobs=args.jobs, run_time=args.run_time, models_file=args.models_file
    )
    sys.stdout.write(json.dumps(found) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
