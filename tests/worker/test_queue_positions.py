"""A job waiting through a long upstream queue keeps every position it was told, with its time,
in one event row rather than a row per change. Real PostgreSQL, the simulator over HTTP."""

from models.history import positions_in
from tests.worker.lifecycle_support import drive, lifecycle_env, new_job, submit_one


def test_every_position_is_kept_in_one_row(private_sessions) -> None:  # type: ignore[no-untyped-def]
    # Each blocker runs 0.6 s, twice the longest poll gap: under load a 0.25 s run let the
    # polls see only 7, 1 and 0.
    with lifecycle_env(private_sessions, capacity=1, run_time=0.6) as (ctx, _, rec):
        blockers = [new_job(ctx, prompt=f"blocker {i}") for i in range(8)]
        gen_id = new_job(ctx, prompt="waits its turn")
        for job in [*blockers, gen_id]:
            submit_one(ctx, job)
        gen = drive(ctx, rec, gen_id, timeout=30)
        assert gen.status == "completed"
        series = positions_in(gen.events)
        positions = [p for _, p in series]
        assert len(set(positions)) >= 4, series  # it really moved through the queue
        assert positions == sorted(positions, reverse=True)
        # no `positions[-1] == 0`: position 0 lasts as long as one poll gap, and
        # under load a poll can go from 1 straight to completed.
        times = [at for at, _ in series]
        assert times == sorted(times)
        assert [e.kind for e in gen.events].count("queue_position") == 1
