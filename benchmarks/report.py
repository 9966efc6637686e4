"""The outputs of a run: a markdown table, ``benchmarks/out/<stamp>.json`` and ``RESULTS.md``."""

import json
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from benchmarks.results import BenchResult, Row

HERE = Path(__file__).resolve().parent
OUT_DIR = HERE / "out"
RESULTS_MD = HERE / "RESULTS.md"


def machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}" if value < 1 else f"{value:.1f}"
    return f"{text} {unit}".strip()


def _ratio(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 100:
        return f"{value:,.0f}×"
    return f"{value:.2f}×" if value >= 0.1 else f"{value:.2g}×"


def _met(row: Row) -> str:
    if row.met is None:
        return ""
    return "✅" if row.met else "❌"


def table(results: list[BenchResult]) -> str:
    lines = [
        "| | metric | genqueue | baseline (same run) | ratio | target | |",
        "|---|---|---:|---|---:|---|---|",
    ]
    for result in results:
        for row in result.rows:
            baseline = (
                f"{row.baseline}: {_num(row.baseline_value)}"
                if row.baseline and row.baseline_value is not None
                else "—"
            )
            lines.append(
                f"| {result.key} | {row.metric} | {_num(row.value, row.unit)} | {baseline} | "
                f"{_ratio(row.ratio)} | {row.target or ''} | {_met(row)} |"
            )
    return "\n".join(lines)


def notes(results: list[BenchResult]) -> str:
    out: list[str] = []
    for result in results:
        for note in result.notes:
            out.append(f"- **{result.key}** {note}")
    return "\n".join(out)


def document(results: list[BenchResult], meta: dict[str, Any]) -> dict[str, Any]:
    return {"meta": meta, "results": {r.key: r.as_json() for r in results}}


def write_json(doc: dict[str, Any], started: datetime, out_dir: Path = OUT_DIR) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{started.strftime('%Y%m%dT%H%M%SZ')}-{doc['meta']['scale']}.json"
    path.write_text(json.dumps(doc, indent=2, default=str) + "\n")
    return path


def results_markdown(results: list[BenchResult], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    settings = ", ".join(f"{k}={v}" for k, v in meta["worker_settings"].items())
    return "\n".join(
        [
            "# genqueue benchmarks — latest run",
            "",
            f"- **date**: {meta['started']} (UTC), {meta['seconds']:.0f} s, "
            f"scale `{meta['scale']}` (`{meta['command']}`)",
            f"- **machine**: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB RAM, "
            f"{m['os']}, Python {m['python']}, PostgreSQL {meta['postgres']}, "
            f"Redis {meta['redis']}; load average at start {m['load_average_at_start']} "
            "(a shared, noisy machine: compare ratios, not absolute figures)",
            f"- **worker settings**: {settings}",
            "- every baseline was measured in the same run on the same machine; "
            "targets are reported, never enforced",
            "",
            table(results),
            "",
            "Notes:",
            "",
            notes(results),
            "",
            "Regenerate with `python -m benchmarks` (full, about 8 minutes) or "
            "`python -m benchmarks --quick`; raw figures go to `benchmarks/out/*.json`.",
            "",
        ]
    )
