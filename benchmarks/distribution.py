"""Whether a phase on several hosts stayed correct, from the database's rows and the simulator's
records (the call log of every upstream job names the calling host):

- every job terminal (and how many completed);
- no job submitted upstream twice: the simulator's accepted submits, counted per prompt (each
  POSTed generation has a prompt of its own);
- no two hosts working one job at once: two calls on one job from two hosts closer than
  ``CONCURRENT`` (the multi-host fault suite's measure), and how many jobs changed hands."""

import itertools
from collections import Counter
from typing import Any

from benchmarks.cluster import Cluster
from benchmarks.observe import TERMINAL_VALUES, job_rows, sim_requests
from sandbox.netns import WORKER_HOSTS

CONCURRENT = 0.02
"""Seconds: two hosts' calls on one job closer than this count as both holding it (a lease
handed over puts a write, a dispatch tick and a claim between them)."""


def correctness(cluster: Cluster, ids: list[str], prompt: str) -> dict[str, Any]:
    wanted = set(ids)
    rows = [r for r in job_rows(cluster) if r.id in wanted]
    ours = f"{prompt} #"  # the phase's own prompts (``{prompt} #{n}``), not its warm-up's
    accepted = [
        s
        for s in cluster.sim_submits()
        if s["request_id"] is not None
        and str((s.get("body") or {}).get("prompt", "")).startswith(ours)
    ]
    per_prompt = Counter(str(s["body"]["prompt"]) for s in accepted)
    upstream = sim_requests(cluster, [r.upstream_request_id for r in rows if r.upstream_request_id])
    at_once = handed = 0
    status_calls: Counter[str] = Counter()
    for info in upstream.values():
        log = [(cluster.host_of(e["caller"]), e["op"], float(e["at"])) for e in info["call_log"]]
        log = [call for call in log if call[0] in WORKER_HOSTS]
        status_calls.update(host for host, op, _ in log if op == "status")
        handed += len({host for host, _, _ in log}) > 1
        at_once += any(
            a[0] != b[0] and b[2] - a[2] < CONCURRENT for a, b in itertools.pairwise(log)
        )
    return {
        "jobs": len(ids),
        "rows": len(rows),
        "terminal": sum(r.status in TERMINAL_VALUES for r in rows),
        "completed": sum(r.status == "completed" for r in rows),
        "submitted_twice": sum(n > 1 for n in per_prompt.values()),
        "never_submitted": len(ids) - len(per_prompt),
        "two_hosts_at_once": at_once,
        "changed_hands": handed,
        "submits_by_host": dict(Counter(cluster.host_of(s["caller"]) for s in accepted)),
        "status_calls_by_host": dict(status_calls),
    }


def by_host(counts: dict[str, int]) -> str:
    """``w1 250 / w2 250``: a count per worker host."""
    return " / ".join(f"{host} {counts.get(host, 0)}" for host in WORKER_HOSTS if host in counts)


def correct(figures: dict[str, Any]) -> bool:
    return bool(
        figures["terminal"] == figures["jobs"] == figures["rows"]
        and figures["submitted_twice"] == 0
        and figures["two_hosts_at_once"] == 0
    )
