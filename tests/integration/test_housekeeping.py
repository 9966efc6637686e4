"""Beat's ticks, seen the way Flower and the worker's log see them: not at all, unless they did
something; the generations' own tasks as before."""

import threading
from typing import Any

import pytest
from celery import Celery

from genqueue.net import wait_until
from models import tasknames
from tests.support.jobs import Jobs
from tests.support.stack import Stack
from worker.housekeeping import TICKS, did_something

pytestmark = pytest.mark.integration


def test_ticks_send_no_task_events_and_log_only_what_they_did(
    jobs: Jobs, stack: Stack, redis_url: str
) -> None:
    """The events Flower builds its task list from, captured from the broker while beat ticks
    (every 0.25 s here) and a generation runs."""
    events: list[dict[str, Any]] = []
    app = Celery("flower-view", broker=redis_url)
    listening = threading.Event()
    with app.connection() as connection:
        receiver = app.events.Receiver(connection, handlers={"*": events.append})

        def capture() -> None:
            listening.set()
            receiver.capture(limit=None, timeout=None, wakeup=False)

        thread = threading.Thread(target=capture, daemon=True)
        thread.start()
        try:
            listening.wait(5)
            # consuming once the worker's heartbeat (every 2 s) comes through
            wait_until(lambda: events, 30, what="the first event")
            gen_id = jobs.create("seen in flower")
            [gen] = jobs.wait([gen_id])
            assert gen.status == "completed"
        finally:
            receiver.should_stop = True
            thread.join(10)
    app.close()

    names = {e["uuid"]: e["name"] for e in events if e.get("name") and e.get("uuid")}
    assert tasknames.SUBMIT_MANY in names.values(), "the capture saw the generation's tasks"
    assert tasknames.POLL_BATCH in names.values()
    ticks = {uuid for uuid, name in names.items() if name in TICKS}
    assert ticks == set(), f"{len(ticks)} tick tasks reached Flower"

    lines = [
        line
        for line in stack.worker.log().splitlines()
        if any(f"{tick}[" in line for tick in TICKS)
    ]
    for line in lines:  # only ticks that did something, at INFO
        assert "received" not in line, line
        assert did_something(line.partition("s: ")[2]), line  # the summary
