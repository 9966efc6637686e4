"""`genqueue up` as a user runs it: the seed request through the CLI, Flower, metrics, a killed
child, a clean stop, and a restart that keeps the data."""

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
from PIL import Image

from genqueue.net import free_port, wait_until
from models.settings import Settings
from tests.support.receiver import webhook_receiver
from worker.cpu_priority import autogroups_enabled, session_nice

pytestmark = [pytest.mark.integration, pytest.mark.timeout(420)]

SEED_PROMPT = (
    "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. Sharp "
    "focus on eye texture and color. Natural lighting to capture authentic eye shine and depth. "
    'The word "FLUX" is painted over it in big, white brush strokes with visible texture.'
)
MODEL = "fal-ai/flux-pro/kontext/text-to-image"
SEED_OPTIONS = [
    "--guidance-scale",
    "3.5",
    "--num-images",
    "1",
    "--output-format",
    "jpeg",
    "--safety-tolerance",
    "2",
    "--aspect-ratio",
    "1:1",
]
WORKER_SERIES = [
    'genqueue_upstream_requests_total{code="200",endpoint="submit"}',
    "genqueue_upstream_request_duration_seconds_bucket",
    'genqueue_submit_outcomes_total{outcome="submitted"}',
    'genqueue_submit_outcomes_total{outcome="ambiguous"}',
    'genqueue_retries_total{operation="poll"}',
    "genqueue_poll_lag_seconds",
    "genqueue_media_lag_seconds",
    "genqueue_due_media_files",
]
API_SERIES = [
    'genqueue_generations{status="completed"} 1.0',
    "genqueue_http_requests_total",
    "genqueue_http_request_duration_seconds_bucket",
    # the simulator's webhook ended the seed job: no status call, no result fetch
    'genqueue_upstream_webhooks_total{outcome="completed"} 1.0',
    'genqueue_time_to_terminal_seconds_count{status="completed"} 1.0',
]


@dataclass
class Up:
    proc: subprocess.Popen[bytes]
    output: Path
    data: Path
    api_url: str
    flower_url: str
    env: dict[str, str]

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def state(self) -> dict[str, object]:
        state: dict[str, object] = json.loads((self.data / "up.json").read_text())
        return state

    def banner_value(self, label: str) -> str:
        match = re.search(rf"^\s+{label}\s+(\S+)", self.text(), re.MULTILINE)
        assert match, f"no {label} in the banner:\n{self.text()}"
        return match.group(1)

    def record(self, generation_id: str) -> dict[str, Any]:
        """The generation as the API has it."""
        response = httpx.get(
            f"{self.api_url}/v1/generations/{generation_id}",
            headers={"Authorization": f"Bearer {self.banner_value('Dev key')}"},
            timeout=10,
        )
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            **self.env,
            "GENQUEUE_API_URL": self.api_url,
            "GENQUEUE_API_KEY": self.banner_value("Dev key"),
        }
        return subprocess.run(
            [sys.executable, "-m", "genqueue", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def start_up(tmp_path: Path, data: Path, run: str, extra_env: dict[str, str] | None = None) -> Up:
    env = {
        k: v
        for k, v in os.environ.items()
        if not (k.startswith("GENQUEUE_") or k in ("FAL_KEY", "PROMETHEUS_MULTIPROC_DIR"))
    }
    env.update(extra_env or {})
    env["GENQUEUE_FLOWER_PORT"] = str(free_port())
    env["GENQUEUE_WORKER_METRICS_PORT"] = str(free_port())
    api_port = free_port()
    output = tmp_path / f"up-{run}.out"
    argv = [sys.executable, "-m", "genqueue", "up", "--data-dir", str(data), "--port"]
    with output.open("wb") as out:  # the child keeps its own copy open
        proc = subprocess.Popen(
            [*argv, str(api_port)],
            env=env,
            cwd=tmp_path,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    up = Up(
        proc,
        output,
        data,
        f"http://127.0.0.1:{api_port}",
        f"http://127.0.0.1:{env['GENQUEUE_FLOWER_PORT']}",
        env,
    )

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"genqueue up exited ({proc.returncode}):\n{up.text()}")
        return "Ctrl-C stops everything" in up.text()

    try:
        wait_until(ready, 150, interval=0.2, what="genqueue up")
    except BaseException:
        stop(up, signal.SIGKILL)
        raise
    return up


def stop(up: Up, sig: int) -> list[psutil.Process]:
    """Signal `up`, wait for it, and return the processes it had started (to check they are
    gone)."""
    try:
        family = psutil.Process(up.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    if up.proc.poll() is None:
        up.proc.send_signal(sig)
    try:
        up.proc.wait(90)
    except subprocess.TimeoutExpired:
        os.killpg(up.proc.pid, signal.SIGKILL)
        raise
    return family


def all_gone(procs: list[psutil.Process]) -> bool:
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_up_runs_the_seed_request_end_to_end(tmp_path: Path, data_dir: Path) -> None:
    up = start_up(tmp_path, data_dir, "first")
    try:
        assert up.banner_value("API") == up.api_url
        assert up.banner_value("Flower") == up.flower_url
        console = httpx.get(up.banner_value("Console"), timeout=10)
        assert console.status_code == 200
        assert console.url == f"{up.api_url}/console"
        assert "<title>Generations · genqueue console</title>" in console.text
        dev_key = up.banner_value("Dev key")
        assert dev_key.startswith("gq_")
        assert "(GENQUEUE_WEBHOOK_ALLOW_PRIVATE=true)" in up.text()  # receivers on this machine

        # The seed request through the CLI, waited for, its image saved and readable.
        out_dir = tmp_path / "images"
        run = up.cli("submit", SEED_PROMPT, *SEED_OPTIONS, "--wait", "--out", str(out_dir))
        assert run.returncode == 0, f"{run.stderr}\n{up.text()}"
        [image_path] = [Path(line) for line in run.stdout.split()]
        assert image_path.parent == out_dir.resolve()
        with Image.open(image_path) as img:
            img.load()
            assert img.format == "JPEG"
            assert img.width > 0
        generation_id = image_path.name.rsplit("-", 1)[0]
        assert "completed" in run.stderr
        # The simulator's signed webhook settled it (up turns fal's webhooks on for it).
        events = up.record(generation_id)["events"]
        assert any(
            e["kind"] == "upstream_webhook" and e["detail"]["outcome"] == "completed"
            for e in events
        ), events

        # Flower: refuses without auth, lists the task with the generation id as its argument.
        password = (data_dir / "flower-password").read_text().strip()
        with httpx.Client(base_url=up.flower_url, timeout=10) as flower:
            assert flower.get("/api/tasks").status_code == 401

            def submit_task_listed() -> bool:
                tasks = flower.get("/api/tasks", auth=("admin", password)).json()
                return any(
                    t["name"] == "generation.submit_many" and generation_id in str(t["args"])
                    for t in tasks.values()
                )

            wait_until(submit_task_listed, 30, interval=0.5, what="the submit task in Flower")

        # /metrics on the API and on the worker.
        api_metrics = httpx.get(f"{up.api_url}/metrics", timeout=10).text
        for series in API_SERIES:
            assert series in api_metrics, series
        worker_metrics = httpx.get(str(up.state()["worker_metrics_url"]), timeout=10).text
        missing = [s for s in WORKER_SERIES if s not in worker_metrics]
        assert not missing, f"worker /metrics lacks {missing}"

        # Client webhook deliveries have a worker of their own.
        children = up.state()["children"]
        assert isinstance(children, dict)
        assert {"worker", "webhooks"} <= set(children)
        # … which copies the media at a lower CPU priority than the polls: its session's
        # (Linux shares the CPU between sessions first: worker/cpu_priority.py).
        if autogroups_enabled():  # each child leads a session of its own
            nice = {n: session_nice(Path(f"/proc/{children[n]}/autogroup")) for n in children}
            assert nice["webhooks"] == Settings.model_fields["media_nice"].default > 0, nice
            assert nice["worker"] == nice["api"] == 0, nice

        # A signed webhook reaches a receiver on this machine (up allows private
        # addresses); its secret is nowhere in Flower or the logs.
        headers = {"Authorization": f"Key {dev_key}"}
        with webhook_receiver() as hook:
            created = httpx.post(
                f"{up.api_url}/v1/generations",
                json={"model": MODEL, "input": {"prompt": "hooked"}, "webhook_url": hook.url},
                headers=headers,
                timeout=10,
            )
            assert created.status_code == 201, created.text
            wait_until(lambda: hook.received, 60, interval=0.2, what="the webhook")
        secret = httpx.get(f"{up.api_url}/v1/webhook-secret", headers=headers, timeout=10).json()[
            "secret"
        ]
        [delivered] = hook.verified(secret)
        assert delivered["request_id"] == created.json()["id"]
        # Its image is genqueue's copy, under the API's URL (the worker has no request host:
        # up gives it the API's), and it holds the upstream's bytes.
        [hooked] = delivered["payload"]["images"]
        assert hooked["url"].startswith(f"{up.api_url}/media/"), hooked
        [kept] = up.record(delivered["request_id"])["result"]["images"]
        assert kept["url"] == hooked["url"]
        ours, theirs = (httpx.get(kept[k], timeout=10) for k in ("url", "upstream_url"))
        assert ours.status_code == 200
        assert ours.content == theirs.content
        seen = httpx.get(f"{up.flower_url}/api/tasks", auth=("admin", password), timeout=10).text
        logs = "".join(p.read_text(errors="replace") for p in data_dir.rglob("*.log"))
        for place in (seen, logs, up.text()):
            assert secret.removeprefix("whsec_") not in place

        # A child that dies is reported and restarted.
        children = up.state()["children"]
        assert isinstance(children, dict)
        worker_pid = int(children["worker"])
        os.kill(worker_pid, signal.SIGKILL)
        wait_until(
            lambda: f"worker (pid {worker_pid}) exited" in up.text(),
            30,
            what="the dead worker reported",
        )
        wait_until(lambda: "restarting worker" in up.text(), 30, what="the worker restarted")

        # A job still running upstream when `up` stops (the simulator made slow for it).
        simulator_url = str(up.state()["simulator_url"])
        httpx.post(f"{simulator_url}/_sim/config", json={"run_time": 15}).raise_for_status()
        in_flight = up.cli("submit", "still running when up stops")
        assert in_flight.returncode == 0, in_flight.stderr
        in_flight_id = in_flight.stdout.strip()
        # (with webhooks on it is not polled while it runs: it shows "queued" until it ends)
        wait_until(
            lambda: up.record(in_flight_id)["status"] in ("queued", "running"),
            60,
            what="the job upstream",
        )
        image = up.record(generation_id)["result"]["images"][0]
        image_url = image.get("upstream_url", image["url"])  # the simulator's
        copy_path = httpx.URL(image["url"]).path  # genqueue's copy, on the API's host
    finally:
        family = stop(up, signal.SIGTERM)
    assert up.proc.returncode == 0, up.text()
    assert family, "up had started children"
    assert wait_until(lambda: all_gone(family), 30, what="no child left after SIGTERM")
    assert not (data_dir / "up.json").exists()
    assert not (data_dir / "up.lock").exists()

    # A restart finds the same key, the finished job and its image at the same URL, and the
    # job that was in flight completes; Ctrl-C (SIGINT) stops it as cleanly.
    again = start_up(tmp_path, data_dir, "second")
    try:
        assert again.banner_value("Dev key") == dev_key
        assert again.state()["simulator_url"] == simulator_url
        picture = httpx.get(image_url, timeout=10)
        assert picture.status_code == 200
        assert picture.content == image_path.read_bytes(), "the same picture"
        assert copy_path.startswith("/media/"), "submit --wait downloaded genqueue's copy"
        copy = httpx.get(f"{again.api_url}{copy_path}", timeout=10)  # the new API serves it
        assert copy.content == image_path.read_bytes(), "genqueue's copy"
        status = again.cli("status", generation_id)
        assert status.returncode == 0, status.stderr
        assert "completed" in status.stdout
        assert "submitted" in status.stdout
        listed = again.cli("ls", "--status", "completed")
        assert generation_id in listed.stdout
        finished = wait_until(
            lambda: again.record(in_flight_id)["status"] in ("completed", "failed"),
            90,
            what="the job in flight to end",
        )
        record = again.record(in_flight_id)
        assert finished
        assert record["status"] == "completed", record
        [meta] = record["result"]["images"]
        assert httpx.get(meta["url"], timeout=10).status_code == 200
    finally:
        family = stop(again, signal.SIGINT)
    assert wait_until(lambda: all_gone(family), 30, what="no child left after Ctrl-C")
