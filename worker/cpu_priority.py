"""CPU priority of the media copies (``GENQUEUE_MEDIA_NICE``): on a shared host, polls first.

Linux weighs a thread's nice only against the threads of its own scheduling group. With
autogroup on (``/proc/sys/kernel/sched_autogroup_enabled``, the default of most kernels) every
session is a group, and the groups share the CPU by the group's nice, whatever their threads'
own; in a container or a service with a CPU controller the cgroup is the group and its CPU
weight decides. ``genqueue up`` and systemd start each process in a session of its own. So the
copy threads' nice (:func:`lower_thread_priority`) makes them yield to the other threads of
their worker only; against a poll worker in another session it did nothing (M2 in
``benchmarks/RESULTS.md``: the polls' p99 lag rose as much at nice 19 as at 0). A worker that
leads its session and serves the media queue but no polls therefore lowers its session's
nice as well (:func:`lower_session_priority`): its copies and its webhook deliveries then take
what CPU the polls leave. Its media writer, which holds the locks of the generations whose
outcomes it writes, is lowered with it; those are completed generations, which no poll
touches. In containers, the CPU weight is the compose file's (``cpu_shares`` of the
``webhooks`` service).
"""

import logging
import os
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from models import tasknames
from models.settings import Settings

log = logging.getLogger(__name__)
AUTOGROUP = Path("/proc/self/autogroup")
AUTOGROUP_SWITCH = Path("/proc/sys/kernel/sched_autogroup_enabled")
POLL_QUEUES = frozenset({tasknames.QUEUE, tasknames.TIMER_QUEUE})


def lower_thread_priority(nice: int) -> None:
    """Lower the calling thread's CPU priority by ``nice`` (Linux, where ``nice`` is per
    thread; elsewhere nothing): the copies (HTTP, SHA-256, the store's writes, and the
    store's own threads, started from these) yield the CPU to the other threads of their
    worker. The media tick calls it from its copy threads only: the tick's leases and the
    outcome writer, which hold row locks, keep the worker's priority."""
    if nice <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(current + nice, 19))
    except OSError:
        log.warning("could not lower the media copy threads' CPU priority", exc_info=True)


def autogroups_enabled(switch: Path = AUTOGROUP_SWITCH) -> bool:
    """The kernel puts every new session in a scheduling group of its own."""
    try:
        return switch.read_text().strip() == "1"
    except OSError:
        return False


def session_nice(autogroup: Path = AUTOGROUP) -> int | None:
    """This process's session (autogroup) nice, from the kernel's ``/autogroup-N nice K``
    line; None where the process is in no autogroup: a kernel without them, or a process in
    the root group, whose line is empty (init's session, and every process started from it
    without a new session, e.g. a CI runner's)."""
    try:
        text = autogroup.read_text()
    except OSError:
        return None
    _, _, nice = text.strip().rpartition(" ")
    try:
        return int(nice)
    except ValueError:
        return None


def lower_session_priority(nice: int, autogroup: Path = AUTOGROUP) -> bool:
    """Set this process's session nice to ``nice`` when the process leads its session (so the
    session is this process and its children alone, never the shell or supervisor that
    started it) and the session's nice is lower. True when it did."""
    if nice <= 0 or sys.platform != "linux" or os.getsid(0) != os.getpid():
        return False
    current = session_nice(autogroup)
    if current is None or current >= nice:
        return False
    try:
        autogroup.write_text(str(min(nice, 19)))
    except OSError as exc:  # e.g. a read-only /proc: in a container, its CPU weight decides
        log.warning("media worker: could not lower its session's CPU priority (%s)", exc)
        return False
    return True


def copies_without_polls(queues: Iterable[str]) -> bool:
    """A worker consuming these queues copies media and runs no polls (nor their timer)."""
    consumed = set(queues)
    return tasknames.MEDIA_QUEUE in consumed and not consumed & POLL_QUEUES


def install(app: Any, settings: Settings) -> None:
    """On ``worker_init`` (after ``-Q`` has chosen the queues), a worker that copies media
    and runs no polls lowers its session's CPU priority by ``media_nice``."""
    from celery.signals import worker_init

    def _lower(sender: Any = None, **_: Any) -> None:
        if sender is None or getattr(sender, "app", None) is not app:
            return
        queues = sender.app.amqp.queues.consume_from
        if copies_without_polls(queues) and lower_session_priority(settings.media_nice):
            log.info("media worker: session CPU priority lowered by %d", settings.media_nice)

    worker_init.connect(_lower, weak=False)
