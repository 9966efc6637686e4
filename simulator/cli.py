"""``python -m simulator``: serve a simulated fal queue until interrupted."""

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from simulator.config import SimulatorConfig
from simulator.core import Simulator
from simulator.server import uvicorn_config
from simulator.store import KEEP_SECONDS, JobStore

logger = logging.getLogger(__name__)


def _capacity(text: str) -> int | None:
    value = int(text)
    return value or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator", description="A fal-queue-compatible upstream simulator."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--run-time", type=float, default=2.0, help="seconds per job")
    parser.add_argument("--run-time-jitter", type=float, default=0.0, help="± seconds")
    parser.add_argument(
        "--capacity", type=_capacity, default=2, help="concurrent jobs (0 = unlimited)"
    )
    parser.add_argument("--result-ttl", type=float, default=3600.0, help="seconds")
    parser.add_argument("--validate", choices=["submit", "result", "off"], default="submit")
    parser.add_argument("--auth", default=None, help='exact Authorization value, e.g. "Key x"')
    parser.add_argument("--public-url", default=None, help="base URL of returned URLs")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="repeat a run: seeds the pictures of jobs that give no seed (default: random)",
    )
    parser.add_argument(
        "--ignore-cancel", action="store_true", help="running jobs ignore cancellation"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="keep the jobs in this directory, so that a restart finds them (default: memory)",
    )
    parser.add_argument(
        "--keep-days",
        type=float,
        default=KEEP_SECONDS / 86400,
        help="with --state-dir: days a finished job and its images are kept",
    )
    parser.add_argument("--log-level", default="info")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and serve until SIGINT/SIGTERM; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    config = SimulatorConfig(
        run_time=args.run_time,
        run_time_jitter=args.run_time_jitter,
        capacity=args.capacity,
        result_ttl=args.result_ttl,
        honor_cancel=not args.ignore_cancel,
        validate=args.validate,
        auth=args.auth,
        public_url=args.public_url,
        seed=args.seed,
    )
    store = None
    if args.state_dir is not None:
        store = JobStore(args.state_dir, keep_seconds=args.keep_days * 86400)
    sim = Simulator(config, store=store)
    server = uvicorn.Server(
        uvicorn_config(sim, host=args.host, port=args.port, log_level=args.log_level)
    )
    logger.info("simulator on http://%s:%d (auth %s)", args.host, args.port, _auth_note(config))
    if store is not None:
        kept = sum(sim.stats()["jobs"].values())
        logger.info("jobs kept in %s: %d taken back", store.path, kept)
    previous = _quiet_stop_signals()
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sim.close()
    logger.info("simulator stopped")
    return 0


def _quiet_stop_signals() -> dict[int, Any]:
    """Let SIGINT/SIGTERM end ``main`` with 0 once uvicorn re-raises them after shutdown."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, _ignore) for sig in (signal.SIGINT, signal.SIGTERM)}


def _ignore(signum: int, frame: FrameType | None) -> None:
    logger.debug("signal %d after shutdown", signum)


def _auth_note(config: SimulatorConfig) -> str:
    return "required" if config.auth is not None else "off"
