"""Run child processes, restart the ones that die, and stop them all without leaving orphans.

Each child leads its own process group (so a terminal's Ctrl-C reaches only the supervisor,
which then stops the children in order) and, on Linux, is sent SIGTERM if the supervisor itself
dies. Stopping sends SIGTERM to the leader, waits, then kills whatever is left in its group.
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from genqueue.logfile import RotatingLog, copy_lines

PR_SET_PDEATHSIG = 1
MAX_BACKOFF = 30.0
REAP_GRACE = 2.0
"""Seconds left to a group's stragglers between SIGTERM and SIGKILL once the leader is gone."""
LOG_MAX_BYTES = 10 * 1024 * 1024
"""A child's log file rolls over past this size…"""
LOG_BACKUPS = 3
"""…and this many old ones are kept: at most about 40 MB of logs per child."""
DRAIN_TIMEOUT = 2.0
"""Seconds to wait for a child's last output to reach its log file."""


@dataclass(frozen=True)
class LogFiles:
    """Where a child's output goes, and how large it may grow."""

    path: Path
    max_bytes: int = LOG_MAX_BYTES
    backups: int = LOG_BACKUPS


def die_with_parent() -> None:
    """``preexec_fn``: on Linux the child gets SIGTERM when the thread that started it ends
    (with its process, whichever way it ends)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class ChildSpec:
    name: str
    argv: list[str]
    ready: Callable[[], bool] | None = None
    """Answers True once the child serves (checked at start-up)."""
    stop_timeout: float = 15.0
    unset: tuple[str, ...] = ()
    """Variables of the shared environment this child must not see."""
    env: dict[str, str] = field(default_factory=dict)
    """Variables this child alone is given (over the shared environment)."""

    def environment(self, shared: dict[str, str]) -> dict[str, str]:
        """The environment this child starts with: the shared one, less ``unset``, plus
        ``env``."""
        own = {k: v for k, v in shared.items() if k not in self.unset}
        own.update(self.env)
        return own


@dataclass
class Child:
    spec: ChildSpec
    logs: LogFiles | None
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    _copier: threading.Thread | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def log_path(self) -> Path | None:
        return self.logs.path if self.logs else None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            self.spec.argv,
            env=self.spec.environment(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if self.logs else None,
            stderr=subprocess.STDOUT if self.logs else None,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        if self.logs is not None and self.proc.stdout is not None:
            log = RotatingLog(
                self.logs.path, max_bytes=self.logs.max_bytes, backups=self.logs.backups
            )
            self._copier = copy_lines(self.proc.stdout, log, name=self.name)
        self.started_at = time.monotonic()
        self.restart_at = None

    def drain(self) -> None:
        """Let the output of an ended child reach its log file (its own children, if any
        still hold the pipe, get ``DRAIN_TIMEOUT``)."""
        if self._copier is not None:
            self._copier.join(DRAIN_TIMEOUT)

    def exit_code(self) -> int | None:
        return self.proc.poll() if self.proc else None

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM the leader, wait, then SIGKILL its whole group (its own children too)."""
        if self.proc is None:
            return
        wait = self.spec.stop_timeout if timeout is None else timeout
        if self.proc.poll() is None:
            _signal_pid(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.reap_group()
        self.drain()

    def reap_group(self) -> None:
        """Kill what is left of the group after its leader ended (e.g. pool processes)."""
        if self.proc is None:
            return
        if _group_alive(self.proc.pid):
            _signal_group(self.proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + REAP_GRACE
            while _group_alive(self.proc.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            _signal_group(self.proc.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 15) -> str:
        self.drain()
        if self.log_path is None or not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as fh:
            fh.seek(max(0, self.log_path.stat().st_size - 16_384))
            text = fh.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


class Supervisor:
    """Starts children in order, restarts the dead with backoff, stops them in reverse."""

    def __init__(
        self,
        specs: list[ChildSpec],
        *,
        env: dict[str, str],
        log_dir: Path | None,
        say: Callable[[str], None],
        log_max_bytes: int = LOG_MAX_BYTES,
        log_backups: int = LOG_BACKUPS,
    ) -> None:
        self.env = env
        self.say = say
        self.children = [
            Child(
                spec,
                LogFiles(log_dir / f"{spec.name}.log", log_max_bytes, log_backups)
                if log_dir
                else None,
            )
            for spec in specs
        ]

    def start(self, child: Child) -> None:
        child.start(self.env)

    def wait_ready(self, child: Child, timeout: float, *, stop: Callable[[], bool]) -> None:
        """Block until the child answers (or ``stop()``); raise ``ChildFailed`` if it exits or
        never answers."""
        if child.spec.ready is None:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not stop():
            code = child.exit_code()
            if code is not None:
                raise ChildFailed(child, f"{child.name} exited with code {code} while starting")
            if child.spec.ready():
                return
            time.sleep(0.1)
        if not stop():
            raise ChildFailed(child, f"{child.name} did not answer within {timeout:.0f}s")

    def check(self) -> None:
        """Report children that died and restart them (1 s, 2 s, 4 s … after repeated deaths)."""
        now = time.monotonic()
        for child in self.children:
            if child.proc is None:
                continue
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restarts += 1
                    self.say(f"restarting {child.name} (restart #{child.restarts})")
                    child.start(self.env)
                continue
            code = child.exit_code()
            if code is None:
                continue
            child.reap_group()
            lived = now - child.started_at
            delay = 1.0 if lived > 60 else min(MAX_BACKOFF, 2.0 ** min(child.restarts, 5))
            tail = (
                f" — last lines of {child.log_path}:\n{child.log_tail()}" if child.log_path else ""
            )
            self.say(
                f"{child.name} (pid {child.pid}) exited with code {code} after {lived:.0f}s; "
                f"restarting in {delay:.0f}s{tail}"
            )
            child.restart_at = now + delay

    def stop_all(self) -> None:
        """Stop in reverse start order; the first (the broker) goes last."""
        for child in reversed(self.children):
            if child.proc is not None:
                child.restart_at = None
                child.stop()

    def pids(self) -> list[int]:
        return [c.pid for c in self.children if c.pid is not None]


class ChildFailed(Exception):
    def __init__(self, child: Child, message: str) -> None:
        super().__init__(message)
        self.child = child
        self.message = message


def _signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
