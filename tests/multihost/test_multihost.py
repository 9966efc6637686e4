"""Faults of whole hosts: a worker host powered off, a worker host cut off from the data host,
the upstream host unreachable, while the other worker host runs with its clock ahead. The
invariants of the fault suite hold (every job terminal, submitted upstream exactly once unless
an ambiguous submit was recorded, the recorded result the upstream's), and the upstream's call
log, which names the calling host, shows that jobs passed between hosts one host at a time."""

import itertools
import subprocess
import sys
import time
import uuid

import psycopg
import pytest

from genqueue.net import wait_until
from models.tables import Generation
from sandbox.netns import FAKETIME_LIB
from tests.multihost.conftest import JOBS, SKEW, Cluster, HostJobs
from tests.support.jobs import assert_invariants

pytestmark = [pytest.mark.multihost, pytest.mark.integration]

CONCURRENT = 0.02
"""Two calls on one job from two hosts closer than this are taken as both holding it. A lease
handed over legitimately puts at least a write, a dispatch tick and a claim between them (and
the poll delay, 50 ms at its jitter's least)."""


def _log(cluster: Cluster, gen: Generation) -> list[tuple[str, str, float]]:
    """(host, op, time) of every upstream call on the job, oldest first."""
    info = cluster.sim.request(str(gen.upstream_request_id))
    return [(cluster.host_of(e["caller"]), e["op"], e["at"]) for e in info["call_log"]]


def assert_one_host_at_a_time(cluster: Cluster, gens: list[Generation]) -> int:
    """No two hosts called upstream for one job at once; how many jobs changed hands."""
    handed = 0
    for gen in gens:
        log = [call for call in _log(cluster, gen) if call[0] != "observer"]
        assert {host for host, _, _ in log} <= {"w1", "w2"}, (gen.id, log)
        for (host, op, at), (later_host, later_op, later_at) in itertools.pairwise(log):
            if host != later_host:
                assert later_at - at >= CONCURRENT, (gen.id, op, later_op, log)
        handed += len({host for host, _, _ in log}) > 1
    polls: dict[str, int] = {}
    for gen in gens:
        for host, op, _ in _log(cluster, gen):
            if op == "status":
                polls[host] = polls.get(host, 0) + 1
    print(f"status calls by host: {polls} for {len(gens)} jobs")
    return handed


def _submitted_by(cluster: Cluster, jobs: HostJobs) -> dict[str, int]:
    hosts: dict[str, int] = {}
    for record in cluster.sim.submits(jobs.marker):
        host = cluster.host_of(record["caller"])
        if record["request_id"] is None:  # refused: nothing started upstream
            host += f" refused {record['status_code']}"
        hosts[host] = hosts.get(host, 0) + 1
    return hosts


def _w1_holds_a_live_job(jobs: HostJobs, cluster: Cluster, ids: list[uuid.UUID]) -> bool:
    """A job w1 submitted upstream, whose request id is recorded and which has not ended: the
    fault must leave it to the other host. (A submit w1 made but had not yet recorded, or a job
    w1 saw to its end before the fault, passes no job between hosts.)"""
    by_w1 = {
        record["request_id"]
        for record in cluster.sim.submits(jobs.marker)
        if record["request_id"] and cluster.host_of(record["caller"]) == "w1"
    }
    return any(
        (gen := jobs.get(i)).status in ("queued", "running")
        and str(gen.upstream_request_id) in by_w1
        for i in ids
    )


def _submit_until_w1_works(jobs: HostJobs, cluster: Cluster, prompt: str) -> list[uuid.UUID]:
    """JOBS jobs or more, in waves, until w1 holds a live job: which worker takes a submit task
    is the broker's choice, and the fault must find w1 at work."""
    ids: list[uuid.UUID] = []
    deadline = time.monotonic() + 90
    while len(ids) < JOBS or not _w1_holds_a_live_job(jobs, cluster, ids):
        assert time.monotonic() < deadline, f"w1 held none of {len(ids)} jobs live"
        ids += [jobs.submit(f"{prompt} {len(ids) + i}") for i in range(2)]
        time.sleep(0.3)
    return ids


def _live(jobs: HostJobs, ids: list[uuid.UUID]) -> int:
    return sum(jobs.get(i).status in ("queued", "running") for i in ids)


def test_the_skewed_host_is_ahead(cluster: Cluster) -> None:
    """w1's processes see the wall clock SKEW ahead (what its worker runs under)."""
    code = "import time; print(time.time())"
    env = {"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": SKEW, "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    argv = cluster.sandbox.hosts["w1"].wrap(["env", *(f"{k}={v}" for k, v in env.items())])
    before = time.time()
    seen = float(subprocess.run([*argv, sys.executable, "-c", code], capture_output=True,
                                text=True, check=True).stdout)  # fmt: skip
    assert seen - time.time() > float(SKEW.strip("+s")) - 1.0
    assert seen - before < float(SKEW.strip("+s")) + 5.0


def test_the_skewed_host_reads_the_database_clock(cluster: Cluster) -> None:
    """w1's worker reads the time as ``models.dbclock`` gives it: the database's, not w1's."""
    code = (
        "import os; from models.db import make_engine; from models.dbclock import DatabaseClock;"
        " print(DatabaseClock(make_engine(os.environ['GENQUEUE_DATABASE_URL']))().timestamp())"
    )
    env = {
        "LD_PRELOAD": FAKETIME_LIB,
        "FAKETIME": SKEW,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "GENQUEUE_DATABASE_URL": cluster.database_url,
    }
    argv = cluster.sandbox.hosts["w1"].wrap(["env", *(f"{k}={v}" for k, v in env.items())])
    with psycopg.connect(cluster.database_url) as conn:
        before = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
        seen = float(subprocess.run([*argv, sys.executable, "-c", code], capture_output=True,
                                    text=True, check=True).stdout)  # fmt: skip
        after = conn.execute("SELECT extract(epoch FROM clock_timestamp())").fetchone()
    assert before is not None
    assert after is not None
    assert float(before[0]) - 0.5 <= seen <= float(after[0]) + 0.5  # SKEW is 3 s


def test_worker_host_powered_off_mid_flight(jobs: HostJobs, cluster: Cluster) -> None:
    cluster.sim.configure(run_time=2.0)
    ids = _submit_until_w1_works(jobs, cluster, "power")
    pids = cluster.power_off("w1")
    assert len(pids) >= 3, pids  # the worker and its pool processes, all at once
    more = [jobs.submit(f"after power-off {i}") for i in range(4)]
    gens = assert_invariants(jobs, ids + more, timeout=120)
    assert [g.status for g in gens] == ["completed"] * len(gens)
    handed = assert_one_host_at_a_time(cluster, gens)
    print(f"power-off: submitted by {_submitted_by(cluster, jobs)}, {handed} jobs changed hands")
    assert handed >= 1  # w1's jobs went on on w2
    assert _submitted_by(cluster, jobs).get("w2", 0) >= 4  # w1 was gone for these
    cluster.power_on("w1")


def test_worker_host_cut_off_from_the_data_host(jobs: HostJobs, cluster: Cluster) -> None:
    cluster.sim.configure(run_time=3.0, capacity=None)  # the jobs of the cut do not queue
    ids = _submit_until_w1_works(jobs, cluster, "cut")
    cluster.sandbox.cut("w1", "back")
    cut_at = time.monotonic()
    try:
        during = [jobs.submit(f"during cut {i}") for i in range(4)]
        # the rest of the system works on meanwhile: w2 alone runs these to their end
        jobs.wait(during, timeout=28)
        remaining = 30 - (time.monotonic() - cut_at)
        if remaining > 0:
            time.sleep(remaining)
    finally:
        cluster.sandbox.mend("w1", "back")
    gens = assert_invariants(jobs, ids + during, timeout=120)
    assert [g.status for g in gens] == ["completed"] * len(gens)
    handed = assert_one_host_at_a_time(cluster, gens)
    print(f"cut: submitted by {_submitted_by(cluster, jobs)}, {handed} jobs changed hands")
    assert handed >= 1  # w1's jobs went on on w2


def test_upstream_host_unreachable(jobs: HostJobs, cluster: Cluster) -> None:
    cluster.sim.configure(run_time=2.0)
    ids = [jobs.submit(f"unreachable {i}") for i in range(JOBS)]
    wait_until(lambda: _live(jobs, ids) >= 2, 60, what="jobs upstream")
    cluster.sandbox.cut("upstream", "front")
    try:
        during = [jobs.submit(f"during outage {i}") for i in range(4)]
        time.sleep(20)
        assert [jobs.get(i).status for i in during] != ["completed"] * len(during)
    finally:
        cluster.sandbox.mend("upstream", "front")
    gens = assert_invariants(jobs, ids + during, timeout=120)
    assert [g.status for g in gens] == ["completed"] * len(gens)
    handed = assert_one_host_at_a_time(cluster, gens)
    print(f"outage: submitted by {_submitted_by(cluster, jobs)}, {handed} jobs changed hands")
