"""The test support ends what it starts: the stack's restart thread cannot bring back a
process that stop() has ended, and a run fails when a process of one of its tests outlives it.
"""

import os
import signal
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest

from genqueue.net import wait_until
from tests.support.leaks import RUN_ENV, RUN_ID
from tests.support.stack import Process, SimAdmin, Stack

pytest_plugins = ["pytester"]
PY = sys.executable
ROOT = Path(__file__).resolve().parents[1]


class SlowToStart(Process):
    """A process whose (re)start takes a while: the window in which stop() used to run."""

    def __init__(self, *args: object, restarting: threading.Event) -> None:
        super().__init__(*args)  # type: ignore[arg-type]
        self.restarting = restarting

    def start(self) -> None:
        if self.proc is not None:  # a restart, not the first start
            self.restarting.set()
            time.sleep(0.5)
        super().start()


class ToyStack(Stack):
    """The stack's supervision over cheap processes."""

    def __init__(self, processes: list[Process]) -> None:  # no services, no ports
        self._processes = processes
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.supervise = True
        self.sim = SimAdmin("http://127.0.0.1:9")  # never called; stop() closes its client

    @property
    def processes(self) -> list[Process]:
        return self._processes

    def start(self) -> None:
        for proc in self._processes:
            proc.start()
        self.supervise_processes()


def alive(token: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if token in " ".join(proc.info["cmdline"] or []) and proc.status() != "zombie":
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_stop_leaves_no_process_the_restart_thread_was_starting(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    restarting = threading.Event()
    once = tmp_path / "crashed-once"
    script = (  # exits at once the first time, then stays (as a restarted worker would)
        f"import pathlib, sys, time\np = pathlib.Path({str(once)!r})\n"
        f"if not p.exists():\n    p.touch()\n    sys.exit(1)\ntime.sleep(60)  # {token}"
    )
    crashing = SlowToStart(
        "crashing",
        [PY, "-c", script],
        dict(os.environ),
        tmp_path,
        restarting=restarting,
    )
    steady = Process(
        "steady", [PY, "-c", f"import time; time.sleep(60)  # {token}"], dict(os.environ), tmp_path
    )
    stack = ToyStack([crashing, steady])
    stack.start()
    try:
        assert restarting.wait(20), "the crashing process was restarted"
    finally:
        stack.stop()  # while the restart thread is inside start()
    time.sleep(1.0)  # what a late restart would have started by now
    assert alive(token) == [], "stop() left a process behind"
    assert crashing.restarts >= 1


def test_a_dead_leaders_group_is_ended_too(tmp_path: Path) -> None:
    """A worker's pool processes outlive its main process when that one is killed alone."""
    token = uuid.uuid4().hex  # the pool process's command line carries it reversed
    script = textwrap.dedent(
        f"""
        import subprocess, sys, time
        mark = "{token[::-1]}"[::-1]
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)  # " + mark])
        time.sleep(60)
        """
    )
    proc = Process("leader", [PY, "-c", script], dict(os.environ), tmp_path)
    proc.start()
    assert proc.proc is not None
    wait_until(lambda: len(alive(token)) == 1, 10, what="the pool process")
    os.kill(proc.proc.pid, signal.SIGKILL)  # the leader only
    proc.proc.wait(10)
    assert len(alive(token)) == 1
    proc.kill()
    assert wait_until(lambda: alive(token) == [], 10, what="the orphan gone")


def test_children_carry_the_run_marker() -> None:
    assert os.environ[RUN_ENV] == RUN_ID


LEAKY = """
import os, subprocess, sys, time

def test_starts_and_forgets() -> None:
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)  # {token} child"],
                     start_new_session=True)

def test_daemon() -> None:  # double fork: its parent is gone at once
    if os.fork() == 0:
        if os.fork() == 0:
            os.execv(sys.executable, [sys.executable, "-c",
                     "import time; time.sleep(120)  # {token} daemon"])
        os._exit(0)
    os.wait()
"""

TIDY = """
import subprocess, sys

def test_starts_and_ends() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    proc.kill()
    proc.wait()
"""


def test_a_session_fails_when_a_tests_process_outlives_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = uuid.uuid4().hex
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_leaky=LEAKY.replace("{token}", token))
    result = pytester.runpytest_subprocess("-p", "tests.support.leaks", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    result.stdout.fnmatch_lines(
        ["*2 process(es) started by the tests were still running at the end*"]
    )
    result.stdout.fnmatch_lines([f"*{token} child*"])
    result.stdout.fnmatch_lines([f"*{token} daemon*"])
    assert alive(token) == [], "the leftovers were ended"


def test_a_session_that_ends_its_processes_passes(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_tidy=TIDY)
    result = pytester.runpytest_subprocess("-p", "tests.support.leaks", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
