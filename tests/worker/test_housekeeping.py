"""The worker's log: a tick that did nothing is a DEBUG line, one that did something stays."""

import logging

import pytest

from models import tasknames
from worker.housekeeping import QuietTicks

SUCCESS = "Task %(name)s[%(id)s] succeeded in %(runtime)ss: %(return_value)s"


def record(name: str, return_value: str | None) -> logging.LogRecord:
    data = {"name": name, "id": "x", "runtime": 0.01, "return_value": return_value}
    line = logging.LogRecord("celery.app.trace", logging.INFO, __file__, 1, SUCCESS, None, None)
    line.args = data  # as Celery passes its context
    line.data = data
    return line


@pytest.mark.parametrize(
    ("name", "summary", "kept"),
    [
        (tasknames.DISPATCH, "{'submits': 0, 'polls': 0}", False),
        (tasknames.DISPATCH, "{'submits': 0, 'polls': 3}", True),
        (tasknames.RECONCILE, "{'lost_submits': 0, 'expired_pending': 0, 'woken': 0}", False),
        (tasknames.WEBHOOKS, "{}", False),
        (tasknames.WEBHOOKS, "{'delivered': 1}", True),
        (tasknames.DISPATCH, None, False),  # "received": nothing done yet
        (tasknames.SUBMIT_MANY, "{'submitted': 0}", True),  # not a tick
    ],
)
def test_ticks_that_did_nothing_leave_the_info_log(
    name: str, summary: str | None, kept: bool
) -> None:
    line = record(name, summary)
    assert QuietTicks().filter(line) is kept
    assert line.levelno == logging.INFO or not kept


def test_at_debug_they_are_debug_lines() -> None:
    logger = logging.getLogger("celery.app.trace")
    before = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        line = record(tasknames.DISPATCH, "{'submits': 0, 'polls': 0}")
        assert QuietTicks().filter(line)
    finally:
        logger.setLevel(before)
    assert (line.levelno, line.levelname) == (logging.DEBUG, "DEBUG")


@pytest.mark.parametrize(
    ("name", "kept"),
    [(tasknames.DISPATCH, False), (tasknames.RECONCILE, False), (tasknames.CANCEL, True)],
)
def test_a_tick_discarded_past_its_expiry_leaves_the_info_log(name: str, kept: bool) -> None:
    """A busy worker drops a tick that waited past its ``expires``: it ran nothing."""
    msg = "Discarding revoked task: %s[%s]"
    line = logging.LogRecord("celery.worker.request", logging.INFO, __file__, 1, msg, None, None)
    line.args = (name, "c2144055")
    assert QuietTicks().filter(line) is kept
