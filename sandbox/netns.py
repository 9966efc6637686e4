"""Several hosts on one machine: Linux network namespaces joined by veth pairs to two bridges in
a namespace of their own (the switch), all created by the test and torn down after it.

The ``back`` network joins the data host (PostgreSQL, the broker), the API host and the worker
hosts; the ``front`` network joins the worker hosts and the upstream host (the simulator), as a
worker host's two interfaces would in production. The test process itself (the observer) has a
veth on each network from the machine's own namespace, so it can reach every host; nothing is
routed beyond these subnets and no traffic leaves the machine.

A fault is what a machine room does: a switch port set down (a host cut off from one network:
its packets vanish, TCP connections hang rather than fail), every process of a host SIGKILLed
at once. Names carry this process's pid and a random token: a run whose pytest was killed
leaves namespaces behind that the next run sweeps (their pid is dead)."""

import contextlib
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass, field

PREFIX = "gqmh-"
NETWORKS = ("back", "front")
HOSTS: dict[str, tuple[str, ...]] = {
    "data": ("back",),
    "api": ("back",),
    "w1": ("back", "front"),
    "w2": ("back", "front"),
    "upstream": ("front",),
}
"""The layout the multi-host suite and benchmark D1 share, host → its networks: the data host
(PostgreSQL, the broker) and the API only on the back network, the upstream only on the front,
the two worker hosts on both."""
WORKER_HOSTS = ("w1", "w2")
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def require_sandbox_rights(*, faketime: bool = False) -> None:
    """Namespaces need root and iproute2; a clock skew (``faketime``) needs libfaketime.
    Missing either, the run fails with what to install: it is never skipped silently."""
    if os.geteuid() != 0:
        raise RuntimeError("the sandbox creates network namespaces: run it as root")
    if shutil.which("ip") is None:
        raise RuntimeError("the sandbox needs iproute2's `ip` (apt-get install iproute2)")
    if faketime and not os.path.exists(FAKETIME_LIB):
        raise RuntimeError(
            f"a host's clock is skewed with {FAKETIME_LIB}: apt-get install libfaketime"
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def namespace_pids(name: str) -> list[int]:
    return [int(p) for p in _ip("netns", "pids", name, check=False).split()]


def kill_namespace(name: str) -> None:
    """SIGKILL every process in the namespace, at once, and wait until none is left."""
    deadline = time.monotonic() + 20
    while pids := namespace_pids(name):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes {pids} outlived SIGKILL in {name}")
        time.sleep(0.05)


def namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def sweep_stale() -> list[str]:
    """Delete the namespaces of runs whose pytest is gone (killed before its teardown)."""
    swept = []
    for name in namespaces():
        if not name.startswith(PREFIX):
            continue
        owner = name[len(PREFIX) :].split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            kill_namespace(name)
            _ip("netns", "del", name, check=False)
            swept.append(name)
    return swept


def _free_subnets() -> tuple[ipaddress.IPv4Network, ipaddress.IPv4Network]:
    """Two /24s in 10/8 that no route or address of this machine touches."""
    used = [
        ipaddress.ip_network(word, strict=False)
        for line in _ip("-4", "route", "show", "table", "all").splitlines()
        for word in line.split()[:1]
        if word[0].isdigit()
    ]
    for _ in range(200):
        a, b = random.randrange(64, 250), random.randrange(0, 254)
        nets = (
            ipaddress.IPv4Network(f"10.{a}.{b}.0/24"),
            ipaddress.IPv4Network(f"10.{a}.{b + 1}.0/24"),
        )
        if not any(n.overlaps(u) for n in nets for u in used):
            return nets
    raise RuntimeError("no free 10.x.y.0/24 pair for the sandbox")


@dataclass
class Host:
    name: str
    netns: str
    addresses: dict[str, str] = field(default_factory=dict)
    """network → this host's IPv4 address on it."""

    def wrap(self, argv: list[str]) -> list[str]:
        """The command line that runs ``argv`` inside this host."""
        return ["ip", "netns", "exec", self.netns, *argv]


class Sandbox:
    """The switch, the hosts and the observer's links; ``close`` leaves nothing behind."""

    def __init__(self, hosts: dict[str, tuple[str, ...]], *, faketime: bool = False) -> None:
        """``faketime``: a host's clock will be skewed (libfaketime must be installed)."""
        require_sandbox_rights(faketime=faketime)
        sweep_stale()
        self.token = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.switch = f"{PREFIX}{self.token}-switch"
        self.subnets = dict(zip(NETWORKS, _free_subnets(), strict=True))
        self.hosts: dict[str, Host] = {}
        self.observer_links: list[str] = []
        self.observer_addresses: list[str] = []
        self._created: list[str] = []
        try:
            self._build(hosts)
        except BaseException:
            self.close()
            raise

    def _add_netns(self, name: str) -> None:
        _ip("netns", "add", name)
        self._created.append(name)
        _ip("-n", name, "link", "set", "lo", "up")

    def _build(self, hosts: dict[str, tuple[str, ...]]) -> None:
        self._add_netns(self.switch)
        for net in NETWORKS:
            _ip("-n", self.switch, "link", "add", net, "type", "bridge")
            _ip("-n", self.switch, "link", "set", net, "up")
        for index, (host, nets) in enumerate(hosts.items()):
            netns = f"{PREFIX}{self.token}-{host}"
            self._add_netns(netns)
            node = self.hosts[host] = Host(host, netns)
            for net in nets:
                address = str(self.subnets[net].network_address + 10 + index)
                self._plug(netns, f"eth-{net}", f"{host}-{net}"[:15], net, address)
                node.addresses[net] = address
        for net in NETWORKS:  # the observer: this process, in the machine's own namespace
            link = f"gq{uuid.uuid4().hex[:8]}{net[0]}"
            _ip("link", "add", link, "type", "veth", "peer", "name", f"obs-{net}")
            self.observer_links.append(link)
            _ip("link", "set", f"obs-{net}", "netns", self.switch)
            self._attach(f"obs-{net}", net)
            observer = str(self.subnets[net].network_address + 254)
            self.observer_addresses.append(observer)
            _ip("addr", "add", f"{observer}/24", "dev", link)
            _ip("link", "set", link, "up")

    def _plug(self, netns: str, inside: str, port: str, net: str, address: str) -> None:
        _ip(
            "link", "add", inside, "netns", netns, "type", "veth", "peer", "name", port,
            "netns", self.switch,
        )  # fmt: skip
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", inside)
        _ip("-n", netns, "link", "set", inside, "up")
        self._attach(port, net)

    def _attach(self, port: str, net: str) -> None:
        _ip("-n", self.switch, "link", "set", port, "master", net)
        _ip("-n", self.switch, "link", "set", port, "up")

    def address(self, host: str, net: str = "back") -> str:
        return self.hosts[host].addresses[net]

    # ------------------------------------------------------------------ faults
    def cut(self, host: str, net: str) -> None:
        """Unplug the host from one network at the switch: its packets there vanish."""
        _ip("-n", self.switch, "link", "set", f"{host}-{net}"[:15], "down")

    def mend(self, host: str, net: str) -> None:
        _ip("-n", self.switch, "link", "set", f"{host}-{net}"[:15], "up")

    def power_off(self, host: str) -> list[int]:
        """SIGKILL every process of the host at once (its pids, as the kernel lists them)."""
        netns = self.hosts[host].netns
        pids = namespace_pids(netns)
        kill_namespace(netns)
        return pids

    # ---------------------------------------------------------------- teardown
    def leftovers(self) -> list[str]:
        """Whatever of this sandbox still exists (empty after ``close``)."""
        ours = [n for n in namespaces() if n.startswith(f"{PREFIX}{self.token}-")]
        links = [link for link in self.observer_links if _ip("link", "show", link, check=False)]
        return ours + links

    def close(self) -> None:
        for netns in reversed(self._created):
            with contextlib.suppress(RuntimeError):
                kill_namespace(netns)
            _ip("netns", "del", netns, check=False)  # the switch's end of each veth goes too
        for link in self.observer_links:
            _ip("link", "del", link, check=False)
