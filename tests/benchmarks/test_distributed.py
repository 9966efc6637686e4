"""``benchmarks.d1_distributed`` at toy scale (10 jobs a phase), so its pieces cannot rot: the
hosts are built, both measurements run with one worker host and with two, on Redis and on
RabbitMQ, and the correctness figures come from the simulator's call log. It asserts what the
run must show (every job terminal, none submitted twice or worked by two hosts at once, both
hosts at work), never a performance target. Root, as the multi-host suite."""

import json
import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks import d1_report, report
from benchmarks.d1_distributed import Phase, run
from benchmarks.scale import TOY
from benchmarks.stack import WorkerSettings
from sandbox.netns import PREFIX, namespaces

pytestmark = [pytest.mark.multihost, pytest.mark.integration]

JOBS = 10
PHASES = (Phase("B1", "redis", 1), Phase("B2", "redis", 2), Phase("B1", "rabbitmq", 2))


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_every_phase_runs_correctly_over_the_hosts(tmp_path: Path) -> None:
    scale = replace(TOY, b1_jobs=JOBS, b2_jobs=JOBS, b2_history_jobs=3)
    ours_before = {n for n in namespaces() if n.startswith(PREFIX)}
    settings = WorkerSettings(tick_interval=0.25, api_workers=1)
    result = run(scale, settings, tmp_path / "logs", PHASES, rabbitmq_early=True)
    assert {n for n in namespaces() if n.startswith(PREFIX)} <= ours_before  # torn down

    figures = result.figures
    assert list(figures) == [p.key for p in PHASES]
    for key, f in figures.items():
        assert f["jobs"] == f["rows"] == f["terminal"] == f["completed"] == JOBS, key
        assert f["submitted_twice"] == f["never_submitted"] == f["two_hosts_at_once"] == 0, key
        cpu = f.get("cpu_ms_per_generation") or f["cpu_ms_per_job"]
        assert positive(cpu["total (machine)"]), key
        assert len(f["load_average"]) == 3, key
    assert figures["B1 redis 1h"]["submits_by_host"] == {"w1": JOBS}
    assert sum(figures["B2 redis 2h"]["submits_by_host"].values()) == JOBS
    assert positive(figures["B1 redis 1h"]["generations_per_second"])
    b2 = figures["B2 redis 2h"]
    assert {"worker w1", "worker w2", "redis", "postgres"} <= set(b2["cpu_ms_per_job"])
    assert positive(b2["lag_p99_s"])
    assert positive(b2["status_calls_per_job"])
    assert positive(b2["peak_in_flight"])
    assert sum(b2["status_calls_by_host"].values()) >= JOBS  # every job polled, by w1 or w2
    rabbit = figures["B1 rabbitmq 2h"]
    assert "rabbitmq" in rabbit["cpu_ms_per_generation"]
    assert set(rabbit["submits_by_host"]) <= {"w1", "w2"}

    # the JSON document and the RESULTS.md section render every phase
    path = report.write_json(report.document([result], {"scale": "toy"}), datetime.now(), tmp_path)
    assert list(json.loads(path.read_text())["results"]["D1"]["figures"]) == list(figures)
    meta = {
        "machine": report.machine(),
        "sizes": scale.describe(),
        "started": "now",
        "seconds": 1.0,
        "command": "smoke",
        "load_average_at_end": [0, 0, 0],
    }
    section = d1_report.section(result, meta)
    assert section.startswith(d1_report.BEGIN)
    assert section.endswith(d1_report.END)
    assert section.count("\n| redis |") + section.count("\n| rabbitmq |") == len(PHASES)
