"""A fal-queue-compatible upstream simulator (UPSTREAM.md §17).

Real HTTP, queue dynamics with a capacity, real images, cancel semantics and fault injection;
drivable in-process (:class:`Simulator`) or over HTTP (``/_sim/...``).
"""

from simulator.app import create_app
from simulator.cli import main
from simulator.clock import ManualClock
from simulator.config import SimulatorConfig
from simulator.core import Simulator
from simulator.faults import FaultRule
from simulator.server import SimulatorServer

__all__ = [
    "FaultRule",
    "ManualClock",
    "Simulator",
    "SimulatorConfig",
    "SimulatorServer",
    "create_app",
    "main",
]
