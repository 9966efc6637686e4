"""Child processes of a benchmark (each in its own process group) and what they cost.

``Proc`` starts one command with its output in a log file and stops exactly that process group.
``TreeSampler`` samples a process and its children with psutil in a background thread: the
peak of the summed RSS (and PSS, which counts pages shared after a fork once) and CPU seconds.
"""

import contextlib
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil


class Proc:
    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name, self.argv, self.env = name, argv, env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self._terminated = False

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise RuntimeError(f"{self.name} is not running")
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> "Proc":
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self._terminated = False
        return self

    def terminate(self) -> None:
        """SIGTERM to our process group, once (a second one makes Celery shut down cold)."""
        if self.popen is not None and self.popen.poll() is None and not self._terminated:
            self._terminated = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to our process group, then SIGKILL to it after ``grace`` seconds."""
        popen = self.popen
        if popen is None:
            return
        self.terminate()
        try:
            popen.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(10)
        # prefork children outlive a parent that was killed: end the rest of the group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(popen.pid, signal.SIGKILL)
        self.popen = None

    def tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def stop_all(procs: list[Proc], grace: float = 10.0) -> None:
    """Stop several processes at once: all are told first, then each is waited for."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.stop(grace)


@dataclass
class Usage:
    peak_rss_mb: float = 0.0
    peak_pss_mb: float = 0.0
    peak_processes: int = 0
    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    samples: int = 0

    @property
    def cpu_percent(self) -> float:
        """Average CPU over the sampled window, in % of one core."""
        return 100.0 * self.cpu_seconds / self.wall_seconds if self.wall_seconds else 0.0


class TreeSampler:
    """Peak memory and CPU time of the process trees rooted at ``pids`` (and of the processes
    whose command line contains ``cmdline_match``, e.g. a database's backends) while running."""

    def __init__(
        self,
        pids: list[int],
        *,
        interval: float = 0.5,
        cmdline_match: str | None = None,
        memory: bool = True,
        children: bool = True,
    ) -> None:
        self.pids = pids
        self.children = children
        self.cmdline_match = cmdline_match
        self.memory = memory
        """Reading PSS (``smaps_rollup``) is not free: CPU-only samplers skip memory."""
        self.interval = interval
        self.usage = Usage()
        self._offset: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-sampler", daemon=True)
        self._started = 0.0

    def __enter__(self) -> "TreeSampler":
        self._started = time.monotonic()
        for proc in self._processes():  # CPU spent before the window (start-up) is not counted
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                self._offset[proc.pid] = times.user + times.system
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        self._sample()
        self.usage.wall_seconds = time.monotonic() - self._started

    def _processes(self) -> list[psutil.Process]:
        found: list[psutil.Process] = []
        for pid in self.pids:
            try:
                root = psutil.Process(pid)
                found.append(root)
                if self.children:
                    found.extend(root.children(recursive=True))
            except psutil.Error:
                continue
        if self.cmdline_match:
            for proc in psutil.process_iter(["cmdline"]):
                if self.cmdline_match in " ".join(proc.info["cmdline"] or ()):
                    found.append(proc)
        return found

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        rss = pss = 0
        procs = self._processes()
        for proc in procs:
            try:
                times = proc.cpu_times()
                if self.memory:
                    info = proc.memory_full_info()
                    rss += info.rss
                    pss += getattr(info, "pss", info.rss)
            except psutil.Error:
                continue
            self._last[proc.pid] = times.user + times.system
        usage = self.usage
        usage.peak_rss_mb = max(usage.peak_rss_mb, rss / 2**20)
        usage.peak_pss_mb = max(usage.peak_pss_mb, pss / 2**20)
        usage.peak_processes = max(usage.peak_processes, len(procs))
        usage.samples += 1
        usage.cpu_seconds = sum(t - self._offset.get(pid, 0.0) for pid, t in self._last.items())
