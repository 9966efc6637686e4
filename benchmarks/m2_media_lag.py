"""M2: B2's polling lag with and without media copies running beside it.
``python -m benchmarks.m2_media_lag [--jobs 1000] [--run-time 20] [--backlog 5000] [--md PATH]``

The issue's second media target: polling lag (B2) unaffected while copies run. One stack (the
simulator, the API, beat), deployed as the README recommends: a poll worker on
``genqueue,genqueue.timer`` and an outbound worker on ``genqueue.webhooks,genqueue.media``.
Two phases in the same run, each a wave of ``jobs`` slow jobs (``run_time`` seconds upstream,
after a warm-up wave of 20) measured the way B2 measures them (detection lag: genqueue's
``completed_at`` minus the simulator's):

- **quiet**: no outbound worker, so nothing is copied;
- **copying**: the outbound worker runs (at the default ``GENQUEUE_MEDIA_NICE``, which
  lowers its session's CPU priority: ``worker/cpu_priority.py``), with ``backlog`` completed
  results of 4 files of 256 KiB waiting on a stand-in CDN (benchmarks/media_cdn.py, in a
  session of its own at nice 19: fal's CDN is not on genqueue's host) when the wave starts (seeded
  after the warm-up: the tick copies ~600 files/s while nothing else runs, so a backlog
  seeded before it was gone when the wave began), so the media tick copies at full speed
  through the whole wave.

In both phases the simulator answers its own image URLs 404 (a ``file`` fault for the waves'
prompts): it renders images with PIL in the process that also answers the status calls, so
copying the wave's own images would measure the simulator's CPU, not genqueue's (fal's CDN is
not its queue API). Those copies fail at once; the copy load is the backlog's.

The copying phase counts the files copied while its wave ran, and how many were still waiting
at its end (some must be: otherwise the copies did not overlap the whole wave).
"""

import argparse
import functools
import shutil
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks import m1_media
from benchmarks.b2_inflight import upstream_figures
from benchmarks.media_cdn import SIZE
from benchmarks.observe import job_rows, sim_requests, wait_jobs_terminal, wait_terminal
from benchmarks.processes import Proc
from benchmarks.report import OUT_DIR
from benchmarks.scale import FULL, Scale
from benchmarks.services import private_database, private_redis
from benchmarks.stack import PY, Stack, WorkerSettings
from benchmarks.stats import percentile
from benchmarks.submitter import post_wave
from genqueue.net import free_port
from models import tasknames
from models.tables import Generation, MediaFile
from worker.cpu_priority import session_nice

WARM_JOBS = 20
BEGIN, END = "<!-- media lag benchmark: begin -->", "<!-- media lag benchmark: end -->"


@dataclass(frozen=True)
class Phase:
    label: str
    figures: dict[str, Any]
    copied_during_wave: int = 0
    waiting_at_end: int = 0
    wave_seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds each process (with its children) used during the wave."""
    outbound_session_nice: int | None = None
    """The outbound worker's session (autogroup) nice at the end of the wave."""


def _submit_skew(stack: Stack, ids: list[str]) -> tuple[float, float]:
    """p50 and p99 of genqueue's ``submitted_at`` minus the simulator's: how late genqueue
    notes a submit the simulator took (a clock that is off shows here as in the lag)."""
    wanted = set(ids)
    rows = [r for r in job_rows(stack) if r.id in wanted and r.upstream_request_id]
    upstream = sim_requests(stack, [r.upstream_request_id or "" for r in rows])
    skews = [
        r.submitted_at - float(info["submitted_at"])
        for r in rows
        if r.submitted_at
        and (info := upstream.get(r.upstream_request_id or ""))
        and info.get("submitted_at")
    ]
    return percentile(skews, 50), percentile(skews, 99)


def wait_warm_up(sessions: sessionmaker[Session], ids: list[str], timeout: float) -> None:
    """Wait until the warm-up jobs themselves ended: they are the model's run-time history
    that B2's wave is polled by. Counting terminal rows instead ended the wait at once in the
    copying phase (the seeded backlog is completed from the start), so its wave was polled
    without history, by the catalogue's prior of 6 s for 20 s jobs: twice the status calls
    and a p99 lag of 7 s, which had been read as the copies' doing."""
    ended = wait_jobs_terminal(sessions, ids, timeout)
    if ended < len(ids):
        raise RuntimeError(f"{len(ids) - ended} of {len(ids)} warm-up jobs did not end")


def _cpu_seconds(pid: int) -> float:
    """CPU seconds of ``pid`` and its living children (0 once gone)."""
    try:
        root = psutil.Process(pid)
        total = 0.0
        for proc in [root, *root.children(recursive=True)]:
            times = proc.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def _postgres_seconds() -> float:
    """CPU seconds of every PostgreSQL process on the host (other databases' too)."""
    total = 0.0
    for proc in psutil.process_iter(["name"]):
        if proc.info["name"] in ("postgres", "postmaster"):
            try:
                times = proc.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
            except psutil.Error:
                continue
    return total


def _cpu(pids: dict[str, int | None]) -> dict[str, float]:
    out = {name: _cpu_seconds(pid) for name, pid in pids.items() if pid}
    out["postgres (all)"] = _postgres_seconds()
    return out


def _workers(stack: Stack) -> Proc:
    """Split the stack's worker as the README deploys it; the outbound worker, not started."""
    poll_queues = f"{tasknames.QUEUE},{tasknames.TIMER_QUEUE}"
    stack.worker.argv = [*stack.worker.argv, "-Q", poll_queues]
    return Proc(
        "outbound-worker",
        [
            *(PY, "-m", "genqueue", "worker", "-Q"),
            f"{tasknames.WEBHOOK_QUEUE},{tasknames.MEDIA_QUEUE}",
            *("--pool", "threads", "--concurrency", "4", "-n", f"outbound-{stack.api_port}@%h"),
            *("--without-mingle", "--without-gossip"),
        ],
        stack.env,
        stack.log_dir,
    )


def _files(stack: Stack, status: str) -> int:
    with stack.sessions() as session:
        count = session.scalar(select(func.count()).where(MediaFile.status == status))
    return int(count or 0)


def _waiting(stack: Stack) -> int:
    """Files not copied yet: pending rows, and results whose files are not listed yet."""
    with stack.sessions() as session:
        listed = session.scalar(
            select(func.count()).where(
                Generation.media_status == "pending",
                ~select(MediaFile.id).where(MediaFile.generation_id == Generation.id).exists(),
            )
        )
    return _files(stack, "pending") + 4 * int(listed or 0)


def _phase(
    stack: Stack,
    scale: Scale,
    label: str,
    *,
    outbound: Proc | None,
    cdn: str,
    backlog: int,
    cdn_pid: int,
) -> Phase:
    stack.reset(run_time=scale.b2_run_time, run_time_jitter=0.0, capacity=0)
    no_images = {"op": "file", "kind": "http", "status_code": 404, "match_prompt": "m2"}
    stack.sim.post("/_sim/faults", json=no_images).raise_for_status()
    key = stack.new_key(f"m2-{label}")
    if outbound is not None:
        outbound.start()
    stack.start_workers()
    try:
        warm = post_wave(stack.api_port, scale, key=key, count=WARM_JOBS, prompt="m2-warm")
        wait_warm_up(stack.sessions, warm.ids, scale.b2_run_time + scale.phase_timeout)
        if outbound is not None:  # now, not before the warm-up: copied by the wave's start
            m1_media.seed(stack.database_url, cdn, backlog)
        before = _files(stack, "stored")
        pids = {
            "poll worker": stack.worker.pid,
            "beat": stack.beat.pid,
            "outbound worker": outbound.pid if outbound is not None else None,
            "stand-in CDN": cdn_pid,
            "simulator": stack.simulator.pid,
            "API": stack.api.pid,
        }
        cpu_before = _cpu(pids)
        started = time.monotonic()
        sub = post_wave(stack.api_port, scale, key=key, count=scale.b2_jobs, prompt="m2")
        expected = WARM_JOBS + len(sub.ids) + (backlog if outbound is not None else 0)
        wait_terminal(stack, expected, scale.b2_run_time + scale.phase_timeout)
        seconds = time.monotonic() - started
        cpu = {k: v - cpu_before.get(k, 0.0) for k, v in _cpu(pids).items()}
        copied, waiting = _files(stack, "stored") - before, _waiting(stack)
        session = (
            None if outbound is None else session_nice(Path(f"/proc/{outbound.pid}/autogroup"))
        )
    finally:
        stack.stop_workers()
        if outbound is not None:
            outbound.stop()
    figures = upstream_figures(stack, sub.ids)
    figures.pop("last_completed_at", None)
    figures["submit_skew"] = _submit_skew(stack, sub.ids)
    if outbound is None:
        return Phase(label, figures, wave_seconds=seconds, cpu=cpu)
    return Phase(label, figures, copied, waiting, seconds, cpu, session)


def _session(phases: list[Phase]) -> str:
    nice = [p.outbound_session_nice for p in phases if p.label != "quiet"]
    return "no autogroups on this kernel" if not nice or nice[0] is None else str(nice[0])


def run(
    scale: Scale,
    backlog: int,
    log_dir: Path,
    nice: int | None = None,
    store: str | None = None,
) -> list[Phase]:
    cdn_port = free_port()
    cdn = f"http://127.0.0.1:{cdn_port}"
    uvicorn = [PY, "-m", "uvicorn", "benchmarks.media_cdn:app", "--port", str(cdn_port)]
    with private_database() as database_url, private_redis() as broker_url:
        stack = Stack(
            database_url=database_url,
            broker_url=broker_url,
            worker=WorkerSettings(),
            log_dir=log_dir,
        )
        # The simulator's images and the stand-in CDN listen on 127.0.0.1.
        stack.env["GENQUEUE_MEDIA_ALLOW_PRIVATE"] = "true"
        if nice is not None:  # else the default's
            stack.env["GENQUEUE_MEDIA_NICE"] = str(nice)
        if store is not None:  # else the data dir's
            stack.env["GENQUEUE_MEDIA_STORE"] = store
        outbound = _workers(stack)
        try:
            stack.start_simulator()
            stack.start_api()
            # The stand-in CDN stands for fal's, which is not on genqueue's hosts: at the
            # lowest priority, in a session of its own, its CPU does not count against polls.
            with m1_media.process(
                [*uvicorn, "--log-level", "warning"], f"{cdn}/files/x/0.jpg", session_nice=19
            ) as cdn_pid:
                phase = functools.partial(_phase, stack, scale, cdn=cdn, cdn_pid=cdn_pid)
                quiet = phase("quiet", outbound=None, backlog=0)
                busy = phase("copying", outbound=outbound, backlog=backlog)
        finally:
            outbound.stop()
            stack.close()
            shutil.rmtree(log_dir / "data" / "media", ignore_errors=True)  # GBs of copies
    return [quiet, busy]


def markdown(phases: list[Phase], scale: Scale, backlog: int) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    command = (
        f"python -m benchmarks.m2_media_lag --jobs {scale.b2_jobs} "
        f"--run-time {scale.b2_run_time:g} --backlog {backlog}"
    )
    lines = [
        BEGIN,
        f"## M2 polling lag while media is copied ({when} UTC, `{command}`)",
        "",
        f"B2's measurement ({scale.b2_jobs} jobs of {scale.b2_run_time:g} s upstream, after "
        f"{WARM_JOBS} warm-up jobs), twice in one run on one stack: a poll worker "
        "(`-Q genqueue,genqueue.timer`, prefork ×2) and beat; in the copying phase also the "
        "outbound worker (`-Q genqueue.webhooks,genqueue.media`, threads ×4, "
        f"its session's nice: {_session(phases)}) with "
        f"{backlog} completed results × 4 files of {SIZE // 1024} KiB waiting on a stand-in "
        "CDN (a session of its own at nice 19) when the wave starts. The simulator answers "
        "the waves' own image URLs 404 in both phases (it renders images in the process that "
        "answers status calls). Target: lag unaffected.",
        "",
        "| phase | jobs completed | lag p50 | lag p99 | lag max | status calls/job | "
        "files copied during the wave | copy rate | files still waiting at its end |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for p in phases:
        f = p.figures
        rate = f"{p.copied_during_wave / p.wave_seconds:.0f} files/s" if p.wave_seconds else "—"
        copying = p.label != "quiet"
        lines.append(
            f"| {p.label} | {f['completed']} | {f['lag_p50_s']:.2f} s | {f['lag_p99_s']:.2f} s | "
            f"{f['lag_max_s']:.2f} s | {f['status_calls_per_job']:.1f} | "
            f"{p.copied_during_wave if copying else '—'} | {rate if copying else '—'} | "
            f"{p.waiting_at_end if copying else '—'} |"
        )
    if any(p.label != "quiet" and not p.waiting_at_end for p in phases):
        lines += ["", "**The copies ran out before the wave ended**: raise `--backlog`."]
    lines += ["", "p99 lag by tenth of the wave (ordered by upstream finish):", ""]
    for p in phases:
        deciles = ", ".join(f"{d:g}" for d in p.figures.get("lag_p99_by_finish_decile_s", []))
        skew = p.figures.get("submit_skew", (0.0, 0.0))
        lines.append(
            f"- {p.label}: {deciles} s (submits noted p50 {skew[0]:.2f} s, p99 {skew[1]:.2f} s "
            "after the simulator took them)"
        )
    lines += [
        "",
        "The lag, split: finding the finish (first status call after it), recording it:",
        "",
    ]
    for p in phases:
        f = p.figures
        lines.append(
            f"- {p.label}: found p50 {f['found_p50_s']:.2f} s, p99 {f['found_p99_s']:.2f} s; "
            f"recorded p50 {f['recorded_p50_s']:.2f} s, p99 {f['recorded_p99_s']:.2f} s"
        )
    lines += ["", "CPU seconds used during the wave (each process with its children):", ""]
    for p in phases:
        used = ", ".join(f"{name} {seconds:.1f}" for name, seconds in p.cpu.items())
        lines.append(f"- {p.label} ({p.wave_seconds:.0f} s): {used}")
    lines += ["", END]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--run-time", type=float, default=20.0)
    parser.add_argument("--backlog", type=int, default=5000)
    parser.add_argument("--md", type=Path, default=None)
    parser.add_argument("--media-nice", type=int, default=None, help="GENQUEUE_MEDIA_NICE")
    parser.add_argument("--media-store", default=None, help="GENQUEUE_MEDIA_STORE")
    args = parser.parse_args()
    scale = Scale(
        name="m2",
        b2_jobs=args.jobs,
        b2_run_time=args.run_time,
        phase_timeout=FULL.phase_timeout,
    )
    log_dir = OUT_DIR / f"logs-m2-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    phases = run(scale, args.backlog, log_dir, args.media_nice, args.media_store)
    section = markdown(phases, scale, args.backlog)
    sys.stdout.write(section + "\n")
    if args.md:
        m1_media.write_section(args.md, section, begin=BEGIN, end=END)


if __name__ == "__main__":
    main()
