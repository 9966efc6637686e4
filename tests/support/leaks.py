"""Every process a test starts ends with the test session: a pytest plugin that fails the run
when one is still alive at its end (and then ends it, so that it does not outlive the run).

A test's process is one of ours when it descends from the pytest process (which becomes a
*child subreaper* on Linux, so orphans and daemons such as PostgreSQL's postmaster stay its
descendants instead of going to init), when its environment carries ``GQ_TEST_RUN`` with this
run's id (every child inherits it), or when its command line carries the id (the test
support puts it into the names of its temp dirs and Celery workers). The id is fresh for each
run, so a run never takes another run's processes (or its own pytest's, for a nested run) for
its own.
"""

import contextlib
import ctypes
import os
import signal
import sys
import uuid
from collections.abc import Iterator

import psutil
import pytest

RUN_ENV = "GQ_TEST_RUN"
"""Not ``GENQUEUE_…``: tests strip those from the environments they build."""
RUN_ID = uuid.uuid4().hex[:12]
"""This run's marker, in the environment of every child and the names of temp dirs."""
os.environ[RUN_ENV] = RUN_ID
GRACE = 5.0
"""Seconds a process stopped by the last teardown gets to finish exiting."""
PR_SET_CHILD_SUBREAPER = 36


def marked(prefix: str) -> str:
    """A name (temp dir prefix, worker name) that tells this run's processes apart."""
    return f"{prefix}{RUN_ID}-"


def pytest_configure(config: pytest.Config) -> None:
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_CHILD_SUBREAPER, 1)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    left = leftovers(GRACE)
    _reap_zombies()
    if not left:
        return
    lines = [f"{len(left)} process(es) started by the tests were still running at the end:"]
    for proc in left:
        with contextlib.suppress(psutil.Error):
            lines.append(f"  pid {proc.pid}: {' '.join(proc.cmdline())[:300]}")
        with contextlib.suppress(psutil.Error):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(left, timeout=5)
    _reap_zombies()
    lines.append("(killed now; find the test that started them and end them there)")
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    for line in lines:
        if reporter is not None:
            reporter.write_line(line, red=True, bold=True)
        else:
            sys.stderr.write(line + "\n")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def leftovers(grace: float) -> list[psutil.Process]:
    """This run's processes still alive (not zombies) after ``grace`` seconds."""
    _, alive = psutil.wait_procs(list(ours()), timeout=grace)
    return [p for p in alive if _running(p)]


def ours() -> Iterator[psutil.Process]:
    me = psutil.Process()
    seen = {me.pid}
    for proc in me.children(recursive=True):
        seen.add(proc.pid)
        if _running(proc):
            yield proc
    for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
        if proc.pid in seen or not _running(proc):
            continue
        cmdline = " ".join(proc.info.get("cmdline") or [])
        environ = proc.info.get("environ") or {}
        if RUN_ID in cmdline or environ.get(RUN_ENV) == RUN_ID:
            yield proc


def _running(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _reap_zombies() -> None:
    """Orphans that ended under the subreaper are ours to wait for."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
