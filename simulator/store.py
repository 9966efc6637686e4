"""A simulator's jobs kept in a SQLite file (``--state-dir``), so that a restart finds them.

Every change to a job is written before the call that made it is answered (one transaction per
call). Times are stored on the wall clock: a restarted simulator maps them onto its own
monotonic clock and replays what fell due while it was down, so a job that was running when it
stopped has finished by the time it is asked again, as it would have on fal. Pictures are not
stored: they are drawn again from the job's seed, the same bytes every time. Finished jobs are
forgotten ``keep_seconds`` after they ended (on the next start).
"""

import json
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from simulator.jobs import Job, JobError, Outcome
from simulator.validation import check_input

logger = logging.getLogger(__name__)

FILE_NAME = "simulator.db"
FORMAT = 1
"""Version of a stored job's JSON; rows of another version are skipped."""
KEEP_SECONDS = 7 * 24 * 3600.0
"""How long a finished job (and so its image URLs) is kept by default."""
TIMES = ("submitted", "deadline", "started", "ended", "end_due")
"""Job fields that are instants on the simulator's clock."""
Convert = Callable[[float], float]


class JobStore:
    """The jobs of one simulator. Not for two processes at once (``genqueue up`` holds its data
    dir); calls come from the simulator under its lock."""

    def __init__(self, directory: Path, *, keep_seconds: float = KEEP_SECONDS) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.path = directory / FILE_NAME
        self.keep_seconds = keep_seconds
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # survives a killed process, not power loss
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS jobs ("
            " request_id TEXT PRIMARY KEY, ended REAL, data TEXT NOT NULL)"
        )

    def load(self, *, now_wall: float, to_clock: Convert) -> list[Job]:
        """Every job kept, its times on the simulator's clock; forgets the expired ones."""
        with self._lock:
            self._db.execute(
                "DELETE FROM jobs WHERE ended IS NOT NULL AND ended < ?",
                (now_wall - self.keep_seconds,),
            )
            rows = self._db.execute("SELECT request_id, data FROM jobs").fetchall()
        jobs = []
        for request_id, data in rows:
            try:
                jobs.append(job_from_json(json.loads(data), to_clock))
            except (ValueError, KeyError, TypeError) as exc:
                logger.warning("skipping stored job %s: %s", request_id, exc)
        return jobs

    def save(self, jobs: Iterable[Job], *, to_wall: Convert) -> None:
        rows = [
            (
                job.request_id,
                None if job.ended is None else to_wall(job.ended),
                json.dumps(job_to_json(job, to_wall)),
            )
            for job in jobs
        ]
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO jobs (request_id, ended, data) VALUES (?, ?, ?) ON CONFLICT "
                "(request_id) DO UPDATE SET ended = excluded.ended, data = excluded.data",
                rows,
            )
            self._db.execute("COMMIT")

    def clear(self) -> None:
        with self._lock:
            self._db.execute("DELETE FROM jobs")

    def close(self) -> None:
        with self._lock:
            self._db.close()


def job_to_json(job: Job, to_wall: Convert) -> dict[str, Any]:
    data: dict[str, Any] = {
        "v": FORMAT,
        "request_id": job.request_id,
        "endpoint": job.endpoint,
        "app": job.app,
        "body": job.body,
        "seed": job.seed,
        "base_url": job.base_url,
        "seq": job.seq,
        "webhook_url": job.webhook_url,
        "error": _error_json(job.error),
        "fail_with": _error_json(job.fail_with),
        "cancel_requested": job.cancel_requested,
        "result_expired": job.result_expired,
        "duplicate_webhook": job.duplicate_webhook,
        "calls": dict(job.calls),
        "call_log": [[op, caller, to_wall(t)] for op, caller, t in job.call_log],
    }
    for name in TIMES:
        value = getattr(job, name)
        data[name] = None if value is None else to_wall(value)
    return data


def job_from_json(data: dict[str, Any], to_clock: Convert) -> Job:
    if data.get("v") != FORMAT:
        raise ValueError(f"stored in format {data.get('v')!r}, not {FORMAT}")

    def moment(name: str) -> float | None:
        return None if data[name] is None else to_clock(float(data[name]))

    params, _errors = check_input(data["endpoint"], data["body"])
    return Job(
        request_id=data["request_id"],
        endpoint=data["endpoint"],
        app=data["app"],
        body=data["body"],
        params=params,
        seed=int(data["seed"]),
        submitted=to_clock(float(data["submitted"])),
        base_url=data["base_url"],
        seq=int(data["seq"]),
        webhook_url=data["webhook_url"],
        error=_error_from(data["error"]),
        fail_with=_error_from(data["fail_with"]),
        cancel_requested=bool(data["cancel_requested"]),
        result_expired=bool(data["result_expired"]),
        duplicate_webhook=bool(data["duplicate_webhook"]),
        calls={str(k): int(v) for k, v in data["calls"].items()},
        call_log=[
            (str(op), caller, to_clock(float(t))) for op, caller, t in data.get("call_log", [])
        ],
        deadline=moment("deadline"),
        started=moment("started"),
        ended=moment("ended"),
        end_due=moment("end_due"),
    )


def _error_json(error: JobError | None) -> dict[str, Any] | None:
    return None if error is None else asdict(error)


def _error_from(data: dict[str, Any] | None) -> JobError | None:
    if data is None:
        return None
    return JobError(**{**data, "outcome": Outcome(data["outcome"])})
