"""Fixtures: a simulator over real HTTP (uvicorn thread) driven by a hand-moved clock.

One server serves the whole session (reset and reconfigured before each test); tests that need
their own (another seed, a real clock) start one with ``start_server``.
"""

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from simulator import ManualClock, Simulator, SimulatorConfig, SimulatorServer
from simulator.config import RUNTIME_FIELDS
from tests.simulator.helpers import SimClient

StartServer = Callable[..., SimulatorServer]
#: Test defaults: one slot and long jobs, so nothing finishes until the test moves the clock;
#: a fixed seed, so a reset replays the same dice.
TEST_DEFAULTS: dict[str, Any] = {"run_time": 10.0, "capacity": 1, "seed": 0}


@pytest.fixture(scope="session")
def shared_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="session")
def shared_server(shared_clock: ManualClock) -> Iterator[SimulatorServer]:
    sim = Simulator(SimulatorConfig(**TEST_DEFAULTS), clock=shared_clock)
    with SimulatorServer(sim=sim) as server:
        yield server


@pytest.fixture
def clock(shared_clock: ManualClock) -> ManualClock:
    return shared_clock


@pytest.fixture
def server(shared_server: SimulatorServer) -> SimulatorServer:
    """The shared server, reset to the test defaults."""
    defaults = SimulatorConfig(**TEST_DEFAULTS)
    shared_server.sim.configure(**{name: getattr(defaults, name) for name in RUNTIME_FIELDS})
    shared_server.sim.reset()
    return shared_server


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    """Start a dedicated simulator on a free port with ``SimulatorConfig(**fields)``."""
    servers: list[SimulatorServer] = []

    def start(*, clock: ManualClock | None = None, **fields: Any) -> SimulatorServer:
        config = SimulatorConfig(**{**TEST_DEFAULTS, **fields})
        server = SimulatorServer(sim=Simulator(config, clock=clock)).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def api(server: SimulatorServer, clock: ManualClock) -> Iterator[SimClient]:
    with httpx.Client(base_url=server.url, timeout=5.0) as http:
        yield SimClient(http=http, server=server, clock=clock)
