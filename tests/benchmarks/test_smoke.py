"""The benchmark harness at toy scale (N=20, jobs of 0.5 s), so its pieces cannot rot.

It asserts the shape of the JSON and that the figures are positive numbers, never a
performance target: benchmarks report, they do not pass or fail CI."""

import json
import math
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks import m1_media, m3_awaited_copy, m4_listing, report
from benchmarks.cli import BENCHMARKS, run_benchmarks
from benchmarks.cold_start import measure
from benchmarks.results import BenchResult
from benchmarks.scale import TOY
from benchmarks.stack import WorkerSettings
from benchmarks.submitter import MODEL
from benchmarks.webhook_burst import run_burst
from migrations.runner import upgrade
from models.catalogue import builtin_catalogue
from tests.support.services import postgres_database, redis_database

pytestmark = pytest.mark.integration

ROW_KEYS = {"metric", "value", "unit", "baseline", "baseline_value", "ratio", "target", "met"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[BenchResult]]:
    # A database and a Redis database of its own: the integration suite's worker must not
    # take these jobs, and TRUNCATE between phases must not touch anyone else's rows.
    with postgres_database() as database_url, redis_database() as broker_url:
        upgrade(database_url)
        yield run_benchmarks(
            database_url=database_url,
            broker_url=broker_url,
            scale=TOY,
            only=list(BENCHMARKS),
            worker=WorkerSettings(concurrency=2, tick_interval=0.25),
            log_dir=tmp_path_factory.mktemp("bench-logs"),
        )


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_json_has_every_benchmark_and_row(results: list[BenchResult], tmp_path: Path) -> None:
    meta = {"scale": TOY.name, "started": "now"}
    path = report.write_json(report.document(results, meta), datetime.now(), tmp_path)
    doc = json.loads(path.read_text())
    assert doc["meta"]["scale"] == "toy"
    assert list(doc["results"]) == ["B1", "B2", "B3", "B4", "B5"]
    for bench in doc["results"].values():
        assert {"key", "title", "params", "figures", "rows", "notes", "seconds"} <= set(bench)
        assert bench["rows"]
        for row in bench["rows"]:
            assert set(row) == ROW_KEYS
            if bench["key"] == "B4":  # with webhooks, 0 calls per job is the point
                assert non_negative(row["value"]), row
            else:
                assert positive(row["value"]), row
            if row["baseline_value"] is not None:
                assert positive(row["baseline_value"]), row
                assert non_negative(row["ratio"]), row


def non_negative(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value >= 0


def test_figures_are_positive(results: list[BenchResult]) -> None:
    b1, b2, b3, b4, b5 = (r.figures for r in results)
    assert b1["completed"] == TOY.b1_jobs
    for name in ("generations_per_second", "raw_celery_tasks_per_second", "latency_p50_s"):
        assert positive(b1[name]), name
    assert b2["completed"] == TOY.b2_jobs
    for name in ("lag_p50_s", "lag_p99_s", "status_calls_per_job", "worker_peak_rss_mb"):
        assert positive(b2[name]), name
    for name in ("peak_in_flight", "extrapolated_seconds", "status_calls_per_job"):
        assert positive(b2["naive_celery"][name]), name
    assert positive(b2["fal_client"]["status_calls_per_job"])
    for phase in ("cold_polling", "polling", "webhooks", "dropped"):
        assert b4[phase]["completed"] == b4[phase]["jobs"], phase
    assert b4["webhooks"]["webhooks_delivered"] == TOY.b4_jobs
    assert positive(b4["webhooks"]["arrival_lag_p99_s"])
    assert positive(b4["polling"]["status_calls_per_job"])
    assert b4["dropped"]["dropped"] > 0  # found by the safety net, or "completed" would fail
    for level in TOY.b3_levels:
        for side in ("genqueue", "bare"):
            figures = b3[f"{side}_c{level}"]
            assert figures["ok"] > 0, (side, level)
            assert positive(figures["p99_ms"]), (side, level)
    for phase in ("fair", "first_come"):
        assert b5[phase]["claimed"] == TOY.b5_flood_jobs + 2 * TOY.b5_small_jobs, phase
        assert positive(b5[phase]["jain"]), phase
        assert positive(b5[phase]["claim_ms_per_job"]), phase


def test_table_renders_every_row(results: list[BenchResult]) -> None:
    table = report.table(results)
    assert table.count("\n") == 1 + sum(len(r.rows) for r in results)
    assert "| B1 |" in table
    assert "| B2 |" in table
    assert "| B3 |" in table
    assert "| B4 |" in table
    assert "| B5 |" in table


def test_a_webhook_burst_completes_every_job(tmp_path: Path) -> None:
    """``benchmarks.webhook_burst`` at toy size: every signed webhook settles its job."""
    with postgres_database() as database_url:
        upgrade(database_url)
        [burst] = run_burst(
            database_url, webhooks=20, concurrency=4, rounds=1, api_workers=1, log_dir=tmp_path
        )
    assert burst["webhooks"] == 20
    assert positive(burst["lag_p99_s"])
    assert positive(burst["api_cpu_ms_per_webhook"])


def test_a_cold_start_completes_every_job_and_counts_its_calls(tmp_path: Path) -> None:
    """``benchmarks.cold_start`` at toy size, the worker given a catalogue entry of 1 s."""
    shown = builtin_catalogue()[MODEL].public()
    entry = {k: v for k, v in shown.items() if k != "source"} | {"expected_run_seconds": 1.0}
    models_file = tmp_path / "models.yaml"
    models_file.write_text(yaml.safe_dump({"models": [entry]}))
    found = measure(
        "smoke", jobs=3, run_time=1.0, models_file=str(models_file), log_dir=tmp_path / "logs"
    )
    assert found["completed"] == 3
    assert positive(found["status_calls_per_job"])
    assert non_negative(found["lag_p99_s"])


def test_the_awaited_copy_benchmark_times_both_results(tmp_path: Path) -> None:
    """``benchmarks.m3_awaited_copy`` at toy size: both results copied, each timed."""
    result = m3_awaited_copy.run(60, tmp_path / "media")
    figures = result["figures"]
    assert set(figures) == {"awaited (a sync /run)", "not awaited (baseline)"}
    for figure in figures.values():
        assert positive(figure["seconds"])
        assert 0 <= figure["left"] <= result["backlog_files"]
    table = m3_awaited_copy.markdown(result, 60)
    assert "| awaited (a sync /run) |" in table
    assert "| not awaited (baseline) |" in table


def test_the_listing_benchmark_times_each_backlog_against_none() -> None:
    """``benchmarks.m4_listing`` at toy size: a row per backlog after the no-backlog baseline,
    each listing timed (each listing's count is asserted inside)."""
    rows = m4_listing.run([30], rounds=3)
    assert [row["backlog"] for row in rows] == [0, 30]
    for row in rows:
        assert positive(row["median_ms"])
        assert row["p90_ms"] >= row["median_ms"]
    table = m4_listing.markdown(rows, [30], 3)
    assert "| 0 | 0 |" in table
    assert "| 30 | 120 |" in table


def test_the_copy_benchmark_copies_every_file_in_both_loops() -> None:
    """``benchmarks.m1_media`` at toy size, local store: genqueue's tick stores every file
    (counted from the database) and so does the bare loop (a copy of its that failed would
    raise here), each figure positive."""
    rows = m1_media.run(5, only="local", rounds=2)
    assert [row["store"] for row in rows] == ["local"]
    row = rows[0]
    assert row["files"] == 2 * 5 * m1_media.IMAGES
    for name in ("genqueue_files_s", "bare_files_s", "ratio"):
        assert positive(row[name])
    assert len(row["round_ratios"]) == 2
    assert "| local | 40 |" in m1_media.markdown(rows, 5, 2)
