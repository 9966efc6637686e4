"""D1's table rows (each phase beside its same-run baseline: two worker hosts beside one,
RabbitMQ beside Redis) and its section of ``RESULTS.md``, between marker comments."""

from typing import Any

from benchmarks import report
from benchmarks.distribution import by_host, correct
from benchmarks.results import BenchResult

BEGIN, END = "<!-- distributed benchmark: begin -->", "<!-- distributed benchmark: end -->"


def _baseline(key: str, figures: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The phase this one is compared with: Redis for RabbitMQ, one worker host for two."""
    bench, broker, hosts = key.split()
    if broker == "rabbitmq":
        other = f"{bench} redis {hosts}"
        return ("Redis, same hosts", figures[other]) if other in figures else None
    if hosts == "2h":
        other = f"{bench} {broker} 1h"
        return ("one worker host", figures[other]) if other in figures else None
    return None


B2_ROWS = (
    ("jobs in flight upstream (peak)", "peak_in_flight", "jobs"),
    ("detection lag p50", "lag_p50_s", "s"),
    ("detection lag p99", "lag_p99_s", "s"),
    ("status calls per job", "status_calls_per_job", "calls"),
)


def rows(result: BenchResult) -> None:
    for key, f in result.figures.items():
        base = _baseline(key, result.figures)
        name, b = base if base else (None, {})
        if key.startswith("B1"):
            result.row(
                f"{key}: end-to-end generations/s",
                f["generations_per_second"],
                "gen/s",
                baseline=name,
                baseline_value=b.get("generations_per_second"),
            )
            result.row(f"{key}: latency p99", f["latency_p99_s"], "s")
        else:
            for label, field, unit in B2_ROWS:
                result.row(
                    f"{key}: {label}", f[field], unit, baseline=name, baseline_value=b.get(field)
                )
        result.row(
            f"{key}: machine CPU per job",
            _cpu(f).get("total (machine)", 0.0),
            "ms",
            baseline=name,
            baseline_value=_cpu(b).get("total (machine)") if b else None,
        )
        result.row(
            f"{key}: jobs terminal",
            f["terminal"],
            f"of {f['jobs']}",
            target=f"all {f['jobs']}",
            met=f["terminal"] == f["jobs"],
        )
        result.row(
            f"{key}: submitted upstream twice or worked by two hosts at once",
            f["submitted_twice"] + f["two_hosts_at_once"],
            "jobs",
            target="0",
            met=correct(f),
        )
        result.notes.append(_note(key, f))


def _note(key: str, f: dict[str, Any]) -> str:
    cpu = ", ".join(f"{n} {ms:g}" for n, ms in _cpu(f).items() if "total" not in n)
    return (
        f"{key}: load average {f['load_average']} at its start, machine "
        f"{f['machine_busy_percent']:.0f}% busy; submits by host "
        f"{by_host(f['submits_by_host'])}, {f['changed_hands']} jobs changed hands; "
        f"CPU ms per job by component: {cpu}"
    )


def _cpu(f: dict[str, Any]) -> dict[str, float]:
    found: dict[str, float] = f.get("cpu_ms_per_generation") or f.get("cpu_ms_per_job") or {}
    return found


def _n(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _workers(cpu: dict[str, float]) -> str:
    parts = [_n(ms) for name, ms in cpu.items() if name.startswith("worker ")]
    return " + ".join(parts)


def _broker_cpu(cpu: dict[str, float]) -> float:
    return cpu.get("redis", cpu.get("rabbitmq", 0.0))


def _check(f: dict[str, Any]) -> str:
    return f"{f['submitted_twice']} / {f['two_hosts_at_once']} {'✅' if correct(f) else '❌'}"


def b1_table(figures: dict[str, Any]) -> list[str]:
    lines = [
        "| broker | worker hosts | completed | gen/s | latency p50 / p99 | machine CPU ms/gen "
        "| workers | API | PostgreSQL | broker | simulator | other | submits by host "
        "| twice / at once | load avg |",
        "|---|---:|---:|---:|---|---:|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for key, f in figures.items():
        if not key.startswith("B1"):
            continue
        _, broker, hosts = key.split()
        c = f["cpu_ms_per_generation"]
        lines.append(
            f"| {broker} | {hosts[:-1]} | {f['completed']} of {f['jobs']} "
            f"| {_n(f['generations_per_second'])} "
            f"| {_n(f['latency_p50_s'])} / {_n(f['latency_p99_s'])} s "
            f"| {_n(c.get('total (machine)', 0))} | {_workers(c)} | {_n(c.get('api', 0))} "
            f"| {_n(c.get('postgres', 0))} | {_n(_broker_cpu(c))} | {_n(c.get('simulator', 0))} "
            f"| {_n(c.get('other (machine)', 0))} | {by_host(f['submits_by_host'])} "
            f"| {_check(f)} | {f['load_average'][0]} |"
        )
    return lines


def b2_table(figures: dict[str, Any]) -> list[str]:
    lines = [
        "| broker | worker hosts | completed | peak in flight | lag p50 | lag p99 "
        "| status calls/job | machine CPU ms/job | workers | submits by host | changed hands "
        "| twice / at once | load avg |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---|---|",
    ]
    for key, f in figures.items():
        if not key.startswith("B2"):
            continue
        _, broker, hosts = key.split()
        c = f["cpu_ms_per_job"]
        lines.append(
            f"| {broker} | {hosts[:-1]} | {f['completed']} of {f['jobs']} "
            f"| {_n(f['peak_in_flight'])} | {_n(f['lag_p50_s'])} s | {_n(f['lag_p99_s'])} s "
            f"| {_n(f['status_calls_per_job'])} | {_n(c.get('total (machine)', 0))} "
            f"| {_workers(c)} | {by_host(f['submits_by_host'])} | {f['changed_hands']} "
            f"| {_check(f)} | {f['load_average'][0]} |"
        )
    return lines


def section(result: BenchResult, meta: dict[str, Any], commentary: str = "") -> str:
    m = meta["machine"]
    sizes = meta["sizes"]
    return "\n".join(
        [
            BEGIN,
            f"## D1 several hosts (generated {meta['started']} UTC, {meta['seconds']:.0f} s, "
            f"`{meta['command']}`)",
            "",
            f"{m['cpu']}, {m['cores']} cores, shared; load average {m['load_average_at_start']} "
            f"at the start, {meta['load_average_at_end']} at the end. B1: {sizes['b1_jobs']} "
            f"generations, instant upstream; B2: {sizes['b2_jobs']} jobs of "
            f"{sizes['b2_run_time']:g} s after {sizes['b2_history_jobs']} of history. Five "
            "network namespaces (`benchmarks/cluster.py`): data (PostgreSQL, Redis, RabbitMQ, the "
            "run's own), api (API + beat), w1, w2 (a worker each: prefork ×2), upstream (the "
            "simulator). All share the machine's cores: two worker hosts measure correctness "
            "under distribution and CPU per job, not a speedup. *twice / at once*: jobs "
            "submitted upstream twice / worked by two hosts within 20 ms (simulator call log).",
            "",
            *b1_table(result.figures),
            "",
            *b2_table(result.figures),
            "",
            *([commentary, ""] if commentary else []),
            END,
        ]
    )


def write_section(result: BenchResult, meta: dict[str, Any]) -> None:
    """Put the section into ``RESULTS.md``: in place of the last one, or at the end."""
    text = report.RESULTS_MD.read_text()
    new = section(result, meta)
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + new + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + new + "\n"
    report.RESULTS_MD.write_text(text)
