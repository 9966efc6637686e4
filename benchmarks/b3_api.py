"""B3 API: POST /v1/generations latency and rate at 50 and 200 concurrent clients, from a load
generator in its own process, beside a bare FastAPI endpoint served by the same ``serve()``.

The worker and beat are stopped: this measures the API with PostgreSQL and Redis under it, and
the published submit tasks simply wait in the broker (it is flushed afterwards)."""

import json
import os
import subprocess
import sys
from typing import Any

import httpx

from benchmarks.loadgen import KEY_ENV
from benchmarks.processes import Proc
from benchmarks.results import BenchResult
from benchmarks.scale import Scale
from benchmarks.stack import Stack
from benchmarks.stats import ratio
from genqueue.net import free_port, wait_until

TARGET_P99_RATIO = 3.0
TARGET_RPS = 400.0


def run(stack: Stack, scale: Scale) -> BenchResult:
    result = BenchResult("B3", "API: POST /v1/generations")
    result.params = {
        "levels": list(scale.b3_levels),
        "seconds_per_level": scale.b3_seconds,
        "warmup_seconds": scale.b3_warmup,
        "server": f"api.main.serve (uvicorn, {stack.settings.api_workers} processes)",
    }
    stack.reset()
    key = stack.new_key("b3")
    bare = _start_bare(stack)
    try:
        for level in scale.b3_levels:
            # interleaved, so drift in the machine's load touches both alike
            genqueue = _load(stack.api_port, level, scale, key)
            baseline = _load(bare[1], level, scale, "")
            result.figures[f"genqueue_c{level}"] = genqueue
            result.figures[f"bare_c{level}"] = baseline
            _rows(result, level, genqueue, baseline)
    finally:
        bare[0].stop(grace=5)
        stack.reset()
    result.notes.append(
        "bare: a FastAPI `async def` POST that reads the JSON body and answers 201 (no auth, "
        "no validation, no database, no broker), run by the same `api.main.serve` with the "
        f"same {stack.settings.api_workers} processes; "
        "worker and beat stopped during B3"
    )
    return result


def _start_bare(stack: Stack) -> tuple[Proc, int]:
    port = free_port()
    proc = Proc(
        "bare-api",
        [
            *(sys.executable, "-m", "benchmarks.bare_app", "--port", str(port)),
            *("--workers", str(stack.settings.api_workers)),
        ],
        stack.env,
        stack.log_dir,
    ).start()
    wait_until(
        lambda: httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).is_success,
        60,
        what="the bare endpoint",
    )
    return proc, port


def _load(port: int, concurrency: int, scale: Scale, key: str) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "benchmarks.loadgen",
        "--port",
        str(port),
        "--concurrency",
        str(concurrency),
        "--duration",
        str(scale.b3_seconds),
        "--warmup",
        str(scale.b3_warmup),
        "--max-requests",
        str(scale.b3_max_requests),
    ]
    env = {**os.environ, KEY_ENV: key}
    done = subprocess.run(
        argv,
        env=env,
        capture_output=True,
        text=True,
        timeout=scale.b3_seconds + scale.b3_warmup + 120,
        check=True,
    )
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def _rows(result: BenchResult, level: int, genqueue: dict[str, Any], bare: dict[str, Any]) -> None:
    p99_ratio = ratio(genqueue["p99_ms"], bare["p99_ms"])
    result.row(
        f"POST latency p50 @ {level} clients",
        genqueue["p50_ms"],
        "ms",
        baseline="bare FastAPI endpoint",
        baseline_value=bare["p50_ms"],
    )
    result.row(
        f"POST latency p99 @ {level} clients",
        genqueue["p99_ms"],
        "ms",
        baseline="bare FastAPI endpoint",
        baseline_value=bare["p99_ms"],
        target=f"≤{TARGET_P99_RATIO:g}× bare",
        met=p99_ratio is not None and p99_ratio <= TARGET_P99_RATIO,
    )
    result.row(
        f"requests/s @ {level} clients",
        genqueue["requests_per_second"],
        "req/s",
        baseline="bare FastAPI endpoint",
        baseline_value=bare["requests_per_second"],
        target=f"≥{TARGET_RPS:g} req/s",
        met=genqueue["requests_per_second"] >= TARGET_RPS,
    )
    failed = genqueue["requests"] - genqueue["ok"] + genqueue["errors"]
    if failed:
        result.notes.append(f"{level} clients: {failed} genqueue requests failed or were not 2xx")
