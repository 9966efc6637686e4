"""A simulator with ``--state-dir`` keeps its jobs across a restart: those that were waiting
or running go on (the time it was down counts, as it would on fal), finished ones still answer
with the same result and the same picture."""

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from genqueue.net import free_port, wait_until
from simulator import ManualClock, Simulator, SimulatorConfig
from simulator.calls import Call
from simulator.store import JobStore
from tests.simulator.helpers import MODEL

APP = "fal-ai/flux-pro"
WALL = 1_800_000_000.0


class Run:
    """One life of a simulator on ``directory``: its own monotonic clock, started at
    ``wall`` on the wall clock."""

    def __init__(self, directory: Path, wall: float, **config: Any) -> None:
        self.clock = ManualClock(start=500.0)
        self.wall0 = wall
        settings = {"run_time": 10.0, "capacity": 1, **config}
        self.sim = Simulator(
            SimulatorConfig(**settings),
            clock=self.clock,
            wall_clock=lambda: wall,
            store=JobStore(directory),
        )

    def call(self, op: Any, **fields: Any) -> Any:
        return self.sim.handle(Call(op=op, app=APP, base_url="http://sim", **fields))

    def submit(self, prompt: str) -> str:
        body = json.dumps({"prompt": prompt}).encode()
        reply = self.call("submit", endpoint=MODEL, body=body)
        assert reply.status_code == 200
        request_id: str = reply.body["request_id"]
        return request_id

    def status(self, request_id: str) -> dict[str, Any]:
        body: dict[str, Any] = self.call("status", request_id=request_id).body
        return body

    def picture(self, request_id: str) -> bytes:
        found = self.sim.image(request_id, "0.jpeg")
        assert found is not None, f"no picture for {request_id}"
        return found[0]

    def info(self, request_id: str) -> dict[str, Any]:
        info = self.sim.request_info(request_id)
        assert info is not None, f"{request_id} is unknown"
        return info

    def stop(self) -> None:
        self.sim.close()


def test_a_restart_takes_back_waiting_running_and_finished_jobs(tmp_path: Path) -> None:
    first = Run(tmp_path, WALL)
    done = first.submit("finished before the restart")
    first.clock.advance(10.0)  # `done` ran 0–10 s
    running, waiting, last = (first.submit(p) for p in ("running", "waiting", "last"))
    first.clock.advance(4.0)  # `running` has 6 s to go
    result = first.call("result", request_id=done)
    assert result.status_code == 200
    picture = first.picture(done)
    cancelled = first.submit("cancelled while waiting")
    assert first.call("cancel", request_id=cancelled).status_code == 202
    calls_before = first.info(running)["calls"]
    first.stop()

    # Down for 3 s: `running` still has 3 s to go, the others wait in the same order.
    second = Run(tmp_path, WALL + 14.0 + 3.0)
    assert second.status(running)["status"] == "IN_PROGRESS"
    assert second.status(waiting)["queue_position"] == 0
    assert second.status(last)["queue_position"] == 1
    assert second.info(running)["calls"]["status"] == calls_before["status"] + 1
    assert second.status(cancelled)["status"] == "COMPLETED"
    assert second.call("result", request_id=cancelled).status_code == 499
    again = second.call("result", request_id=done)
    assert (again.status_code, again.body) == (200, result.body), "the same result"
    assert second.picture(done) == picture, "the same picture from the same seed"
    second.clock.advance(3.0)
    assert second.status(running)["status"] == "COMPLETED"
    assert second.call("result", request_id=running).status_code == 200
    assert second.status(waiting)["status"] == "IN_PROGRESS"
    assert second.sim.stats()["jobs"] == {"in_queue": 1, "in_progress": 1, "completed": 3}
    second.stop()


def test_what_fell_due_while_down_has_happened(tmp_path: Path) -> None:
    first = Run(tmp_path, WALL)
    ids = [first.submit(f"job {n}") for n in range(3)]  # run 0–10, 10–20, 20–30
    first.clock.advance(1.0)
    first.stop()

    second = Run(tmp_path, WALL + 25.0)
    assert [second.status(i)["status"] for i in ids] == ["COMPLETED", "COMPLETED", "IN_PROGRESS"]
    assert second.status(ids[0])["metrics"] == {"inference_time": 10.0}
    info = second.info(ids[1])
    assert (info["started_at"], info["completed_at"]) == (WALL + 10.0, WALL + 20.0)
    second.stop()


def test_finished_jobs_are_forgotten_after_keep_seconds(tmp_path: Path) -> None:
    first = Run(tmp_path, WALL, run_time=0.0)
    old = first.submit("old")
    first.clock.advance(1.0)
    first.stop()
    store = JobStore(tmp_path, keep_seconds=3600.0)
    kept = store.load(now_wall=WALL + 3000.0, to_clock=lambda wall: wall)
    assert [job.request_id for job in kept] == [old]
    assert store.load(now_wall=WALL + 3700.0, to_clock=lambda wall: wall) == []
    store.close()


def test_reset_forgets_the_stored_jobs(tmp_path: Path) -> None:
    first = Run(tmp_path, WALL)
    gone = first.submit("gone")
    first.sim.reset()
    first.stop()
    second = Run(tmp_path, WALL + 1.0)
    assert second.call("status", request_id=gone).status_code == 404
    second.stop()


def start(port: int, state: Path, log: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "simulator", "--port", str(port), "--state-dir", str(state)]
    with log.open("ab") as out:  # the child keeps its own copy
        proc = subprocess.Popen([*argv, "--run-time", "3"], stdout=out, stderr=subprocess.STDOUT)

    def answers() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            return httpx.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1).is_success
        except httpx.TransportError:
            return False

    wait_until(answers, 20, what="the simulator")
    return proc


def test_the_cli_keeps_its_jobs_in_the_state_dir(tmp_path: Path) -> None:
    """`python -m simulator --state-dir` killed mid-run (as `genqueue up` stops it) and
    started again: the job it was running completes and its image URL answers."""
    port, log = free_port(), tmp_path / "simulator.log"
    url = f"http://127.0.0.1:{port}"
    proc = start(port, tmp_path / "state", log)
    try:
        handle = httpx.post(f"{url}/{MODEL}", json={"prompt": "across a restart"}).json()
        assert httpx.get(handle["status_url"]).json()["status"] == "IN_PROGRESS"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        proc = start(port, tmp_path / "state", log)
        assert "1 taken back" in log.read_text()
        wait_until(
            lambda: httpx.get(handle["status_url"]).json()["status"] == "COMPLETED",
            10,
            what="the job to complete after the restart",
        )
        result = httpx.get(handle["response_url"]).json()
        image = httpx.get(result["images"][0]["url"])
        assert image.status_code == 200
        assert image.headers["content-type"] == "image/jpeg"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def test_the_webhook_signing_key_survives_a_restart(tmp_path: Path) -> None:
    first = Run(tmp_path, WALL)
    jwks = first.sim.jwks()
    first.sim.close()
    key_file = tmp_path / "webhook-key.pem"
    assert key_file.stat().st_mode & 0o777 == 0o600
    second = Run(tmp_path, WALL + 60)
    assert second.sim.jwks() == jwks  # receivers that cached the JWKS still verify
    kid = second.sim.rotate_webhook_key()
    second.sim.close()
    third = Run(tmp_path, WALL + 120)
    rotated = third.sim.jwks()
    third.sim.close()
    assert rotated is not None
    assert [k["kid"] for k in rotated["keys"]] == [kid]
    assert rotated != jwks


def test_without_a_store_each_simulator_has_its_own_key() -> None:
    one, two = Simulator(SimulatorConfig()), Simulator(SimulatorConfig())
    try:
        assert one.jwks() != two.jwks()
    finally:
        one.close()
        two.close()
