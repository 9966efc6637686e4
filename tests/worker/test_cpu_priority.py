"""The media worker's CPU priority (worker/cpu_priority.py), in real processes: a session's
nice is what Linux weighs between sessions, so a worker that copies and leads its session
lowers it."""

import subprocess
import sys
from pathlib import Path

import pytest

from models import tasknames
from worker.cpu_priority import autogroups_enabled, copies_without_polls, session_nice

# A process that starts a session gets an autogroup of its own; the test process itself may
# be in none (the root group: a CI runner started from init's session).
autogroups = pytest.mark.skipif(
    not autogroups_enabled(), reason="this kernel puts no session in an autogroup"
)

LOWER = (
    "from worker.cpu_priority import lower_session_priority, session_nice; "
    "import sys; print(lower_session_priority(int(sys.argv[1])), session_nice())"
)


def _python(code: str, *args: str, own_session: bool = True) -> list[str]:
    """The lines ``code`` prints, run by a Python process of its own (leading its session
    unless told otherwise)."""
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        check=True,
        start_new_session=own_session,
        timeout=60,
    ).stdout.splitlines()


def _lower(nice: int, *, own_session: bool) -> tuple[str, str]:
    """Whether the process lowered its session, and its session's nice after ("None" in the
    root group)."""
    lowered, nice_after = _python(LOWER, str(nice), own_session=own_session)[-1].split()
    return lowered, nice_after


@pytest.mark.parametrize(
    ("queues", "lowers"),
    [
        ({tasknames.WEBHOOK_QUEUE, tasknames.MEDIA_QUEUE}, True),
        ({tasknames.MEDIA_QUEUE}, True),
        ({tasknames.WEBHOOK_QUEUE}, False),  # copies nothing
        ({tasknames.QUEUE, tasknames.TIMER_QUEUE}, False),
        ({tasknames.QUEUE, tasknames.TIMER_QUEUE, tasknames.MEDIA_QUEUE}, False),  # polls too
        ({tasknames.TIMER_QUEUE, tasknames.MEDIA_QUEUE}, False),  # the dispatcher's tick
    ],
)
def test_only_a_worker_that_copies_and_runs_no_polls_lowers_its_session(
    queues: set[str], lowers: bool
) -> None:
    assert copies_without_polls(queues) is lowers


@autogroups
def test_a_process_that_leads_its_session_lowers_the_sessions_nice() -> None:
    assert _lower(7, own_session=True) == ("True", "7")


@autogroups
def test_a_process_in_its_parents_session_leaves_it_alone() -> None:
    """The session is the shell's or the supervisor's: lowering it would slow them too."""
    mine = session_nice()
    assert _lower(7, own_session=False) == ("False", str(mine))
    assert session_nice() == mine


@autogroups
def test_nice_zero_and_a_session_already_lower_are_left_as_they_are() -> None:
    assert _lower(0, own_session=True) == ("False", "0")
    code = (
        "from worker.cpu_priority import lower_session_priority as low, session_nice; "
        "low(9); print(low(4), session_nice())"
    )
    assert _python(code) == ["False 9"]


def test_the_session_nice_is_read_from_the_kernels_line(tmp_path: Path) -> None:
    line = tmp_path / "autogroup"
    line.write_text("/autogroup-1208 nice 12\n")
    assert session_nice(line) == 12
    assert session_nice(tmp_path / "missing") is None


def test_a_process_in_the_root_group_has_no_session_nice(tmp_path: Path) -> None:
    """The kernel's line is empty for a process in no autogroup (init, and what it starts
    without a new session: where CI ran these tests), and a worker there lowers nothing."""
    root = Path("/proc/1/autogroup")
    if root.exists() and root.read_text() == "":
        assert session_nice(root) is None
    line = tmp_path / "autogroup"
    line.write_text("")
    assert session_nice(line) is None
    code = (
        "import os, sys; from pathlib import Path; os.setsid(); "
        "from worker.cpu_priority import lower_session_priority as low; "
        "print(low(5, Path(sys.argv[1])))"
    )
    assert _python(code, str(line), own_session=False) == ["False"]
    assert line.read_text() == ""


def test_a_session_the_kernel_will_not_lower_is_a_warning_not_a_failure() -> None:
    """A read-only or refusing ``/proc`` (a container's): the worker starts all the same and
    says in one line why its session kept its priority. (``/proc/self/stat`` stands in: it
    reads as a line ending in a number and refuses every write.)"""
    code = (
        "import logging, sys; from pathlib import Path; "
        "from worker.cpu_priority import lower_session_priority as low; "
        "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s'); "
        "print(low(5, Path('/proc/self/stat')))"
    )
    out = _python(code)
    assert out[-1] == "False"
    [warning] = out[:-1]
    assert warning.startswith("WARNING media worker: could not lower its session's CPU priority")
