"""The supervisor behind `genqueue up`: restarts the dead, leaves no process behind."""

import sys
import time
from functools import partial
from pathlib import Path

import psutil
import pytest

from genqueue.net import wait_until
from genqueue.supervisor import ChildFailed, ChildSpec, Supervisor

PY = sys.executable
GRANDPARENT = """
import signal, subprocess, sys, time
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c",
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def supervisor(specs: list[ChildSpec], tmp_path: Path, said: list[str]) -> Supervisor:
    return Supervisor(specs, env={"PATH": "/usr/bin:/bin"}, log_dir=tmp_path, say=said.append)


def family(tmp_path: Path, name: str) -> list[psutil.Process]:
    """The child and the grandchild whose pid it printed to its log."""
    log = tmp_path / f"{name}.log"
    grandchild = int(wait_until(lambda: log.read_text().strip(), 10, what="grandchild pid"))
    return [psutil.Process(grandchild)]


def gone(procs: list[psutil.Process]) -> bool:
    def dead(p: psutil.Process) -> bool:
        try:
            return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(dead(p) for p in procs)


def test_a_child_that_dies_is_reported_and_restarted(tmp_path: Path) -> None:
    marker = tmp_path / "runs"
    script = (
        f"open({str(marker)!r}, 'a').write('x'); print('boom', flush=True); raise SystemExit(3)"
    )
    said: list[str] = []
    sup = supervisor([ChildSpec("flaky", [PY, "-c", script])], tmp_path, said)
    sup.start(sup.children[0])
    try:

        def restarted() -> bool:
            sup.check()
            return marker.exists() and len(marker.read_text()) >= 2

        wait_until(restarted, 20, interval=0.05, what="a restart")
    finally:
        sup.stop_all()
    assert any(
        "flaky" in line and "exited with code 3" in line and "boom" in line for line in said
    ), said
    assert any("restarting flaky" in line for line in said), said


def test_stop_kills_the_whole_group_even_when_the_leader_ignores_sigterm(tmp_path: Path) -> None:
    said: list[str] = []
    spec = ChildSpec("stubborn", [PY, "-c", GRANDPARENT, "stubborn"], stop_timeout=1.0)
    sup = supervisor([spec], tmp_path, said)
    sup.start(sup.children[0])
    leader = psutil.Process(sup.children[0].pid)
    procs = [leader, *family(tmp_path, "stubborn")]
    started = time.monotonic()
    sup.stop_all()
    assert time.monotonic() - started < 10
    assert wait_until(lambda: gone(procs), 10, what="every process gone")


def test_stop_reaps_what_outlives_a_polite_leader(tmp_path: Path) -> None:
    said: list[str] = []
    sup = supervisor([ChildSpec("polite", [PY, "-c", GRANDPARENT, "polite"])], tmp_path, said)
    sup.start(sup.children[0])
    procs = family(tmp_path, "polite")
    sup.stop_all()
    assert wait_until(lambda: gone(procs), 10, what="the grandchild gone")


def test_ready_check_fails_when_the_child_exits(tmp_path: Path) -> None:
    said: list[str] = []
    spec = ChildSpec("dud", [PY, "-c", "raise SystemExit(2)"], ready=lambda: False)
    sup = supervisor([spec], tmp_path, said)
    sup.start(sup.children[0])
    try:
        with pytest.raises(ChildFailed, match="exited with code 2"):
            sup.wait_ready(sup.children[0], 10, stop=lambda: False)
    finally:
        sup.stop_all()


def test_a_child_can_be_kept_from_a_shared_variable_or_given_its_own(tmp_path: Path) -> None:
    script = "import os; print(os.environ.get('SHARED', '-'), os.environ['PATH'] != '', flush=True)"
    specs = [
        ChildSpec("sees", [PY, "-c", script]),
        ChildSpec("blind", [PY, "-c", script], unset=("SHARED",)),
        ChildSpec("given", [PY, "-c", script], env={"SHARED": "own"}),
    ]
    said: list[str] = []
    env = {"PATH": "/usr/bin:/bin", "SHARED": "9808"}
    sup = Supervisor(specs, env=env, log_dir=tmp_path, say=said.append)
    for child in sup.children:
        sup.start(child)
    try:
        for name, seen in (("sees", "9808 True"), ("blind", "- True"), ("given", "own True")):
            log = tmp_path / f"{name}.log"
            assert wait_until(partial(_text, log), 10) == seen
    finally:
        sup.stop_all()


def _text(path: Path) -> str:
    return path.read_text().strip()


def test_a_childs_log_rolls_over_and_stays_bounded(tmp_path: Path) -> None:
    """About 1 MB of output into files of 100 kB, two kept: the log cannot grow without end,
    and no line is lost or cut at a roll-over."""
    script = (
        "for n in range(20000):\n"
        "    print(f'line {n:05d} ' + 'x' * 40)\n"
        "print('last line', flush=True)\n"
    )
    said: list[str] = []
    sup = Supervisor(
        [ChildSpec("chatty", [PY, "-c", script])],
        env={"PATH": "/usr/bin:/bin"},
        log_dir=tmp_path,
        say=said.append,
        log_max_bytes=100_000,
        log_backups=2,
    )
    child = sup.children[0]
    sup.start(child)
    try:
        wait_until(lambda: child.exit_code() is not None, 30, what="the child to finish")
    finally:
        sup.stop_all()
    files = [tmp_path / "chatty.log.2", tmp_path / "chatty.log.1", tmp_path / "chatty.log"]
    assert sorted(p.name for p in tmp_path.glob("chatty.log*")) == sorted(p.name for p in files)
    assert all(p.stat().st_size <= 100_000 for p in files), [p.stat().st_size for p in files]
    lines = [line for p in files for line in p.read_text().splitlines()]
    assert lines[-1] == "last line"
    numbers = [int(line.split()[1]) for line in lines[:-1]]
    assert numbers == list(range(numbers[0], 20000)), "whole lines, in order, none missing"
    assert len(lines) > 2 * 100_000 // 60, "two full files kept"
