"""End to end with the official ``fal-client``: a live genqueue API, a real Celery worker and
beat, and the simulator as the upstream — all over real HTTP, on a database and a Redis of
this module's own.

fal-client hard-codes ``https://``; UPSTREAM.md §14: point ``QUEUE_URL_FORMAT`` at genqueue.
"""

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import fal_client
import fal_client.client as fal_module
import httpx
import pytest
from sqlalchemy import select

from api.app import create_app
from genqueue.net import wait_until
from migrations.runner import upgrade
from models.db import make_engine, make_session_factory
from models.settings import Settings
from models.tables import Generation, MediaFile
from tests.api.support import MODEL, live_server, new_key
from tests.support.services import postgres_database, redis_database
from tests.support.stack import UPSTREAM_KEY, SimAdmin, Stack, running_stack

pytestmark = pytest.mark.integration
APP = "fal-ai/flux-pro/kontext/text-to-image"


@dataclass
class E2E:
    base_url: str
    key: str
    stack: Stack
    settings: Settings
    clients: list[fal_client.SyncClient] = field(default_factory=list)

    def client(self, key: str | None = None, timeout: float = 30) -> fal_client.SyncClient:
        client = fal_client.SyncClient(key=key or self.key, default_timeout=timeout)
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        """fal-client caches an httpx.Client on each SyncClient and never closes it."""
        for client in self.clients:
            if "_client" in client.__dict__:
                client.__dict__["_client"].close()
        self.clients.clear()


@pytest.fixture(scope="module")
def e2e() -> Iterator[E2E]:
    with postgres_database() as db_url, redis_database() as broker_url:
        upgrade(db_url)
        engine = make_engine(db_url)
        key = new_key(make_session_factory(engine))
        engine.dispose()
        with running_stack(database_url=db_url, broker_url=broker_url, extra_env={}) as stack:
            # The stack's data dir: the worker's media store and the URLs' signing key.
            settings = Settings(
                database_url=db_url,
                broker_url=broker_url,
                data_dir=Path(stack.dir),
                submit_grace=2,
            )
            app = create_app(settings)
            with live_server(app) as base_url:
                yield from _configured(E2E(base_url, key, stack, settings), app)


def _configured(e2e: E2E, app: Any) -> Iterator[E2E]:
    """fal-client pointed at genqueue while ``e2e`` lasts."""
    previous = fal_module.QUEUE_URL_FORMAT, fal_module.RUN_URL_FORMAT
    fal_module.QUEUE_URL_FORMAT = e2e.base_url + "/"
    fal_module.RUN_URL_FORMAT = e2e.base_url + "/run/"  # as the README says
    try:
        yield e2e
    finally:
        e2e.close_clients()
        fal_module.QUEUE_URL_FORMAT, fal_module.RUN_URL_FORMAT = previous
        app.state.genqueue.close()


@pytest.fixture
def sim(e2e: E2E) -> Iterator[SimAdmin]:
    e2e.stack.sim.clear_faults()
    e2e.stack.sim.configure(run_time=1.0, capacity=4, honor_cancel=True)
    yield e2e.stack.sim
    e2e.stack.sim.clear_faults()


def _prompt(text: str) -> dict[str, Any]:
    return {"prompt": f"{text} [{uuid.uuid4().hex[:8]}]", "num_images": 1}


def _record(e2e: E2E, request_id: str) -> dict[str, Any]:
    """The generation as the native surface shows it."""
    answer = httpx.get(
        f"{e2e.base_url}/v1/generations/{request_id}",
        headers={"Authorization": f"Key {e2e.key}"},
    )
    answer.raise_for_status()
    record: dict[str, Any] = answer.json()
    return record


def _explain(e2e: E2E) -> str:
    return e2e.stack.logs()


def test_submit_status_iter_events_result(e2e: E2E, sim: Any) -> None:
    client = e2e.client()
    handle = client.submit(APP, arguments=_prompt("a lighthouse"))
    assert handle.status_url.startswith(e2e.base_url + "/fal-ai/flux-pro/requests/")

    first = handle.status(with_logs=True)
    assert isinstance(first, fal_client.Queued | fal_client.InProgress | fal_client.Completed)
    events = list(handle.iter_events(with_logs=True, interval=0.1))
    assert isinstance(events[-1], fal_client.Completed), _explain(e2e)
    assert events[-1].logs, "with_logs=True gives the history as log entries"
    assert any(isinstance(e, fal_client.Queued) for e in [first, *events])

    # The result's files are copied into genqueue's store just after completion, and both
    # surfaces then hand out genqueue's URLs: compare once the copy has settled.
    wait_until(lambda: _record(e2e, handle.request_id)["media_status"] != "pending", 60)
    output = handle.get()
    assert output["images"][0]["url"].startswith(f"{e2e.base_url}/media/")
    assert output["has_nsfw_concepts"] == [False]
    assert client.result(APP, handle.request_id) == output
    again = client.status(APP, handle.request_id, with_logs=True)
    assert isinstance(again, fal_client.Completed)
    assert again.metrics.get("inference_time", 0) > 0

    # what the worker recorded is visible on the native surface under the same id
    record = _record(e2e, handle.request_id)
    assert record["status"] == "completed"
    assert record["media_status"] == "stored"
    assert record["upstream_request_id"]
    upstream_urls = [image.pop("upstream_url") for image in record["result"]["images"]]
    assert record["result"] == output  # /v1 keeps the upstream URL beside genqueue's
    assert all(url.startswith(f"{e2e.stack.sim_url}/files/") for url in upstream_urls)
    assert UPSTREAM_KEY not in str(record)


def test_subscribe(e2e: E2E, sim: Any) -> None:
    enqueued: list[str] = []
    updates: list[Any] = []
    output = e2e.client().subscribe(
        APP,
        arguments=_prompt("a harbour"),
        with_logs=True,
        on_enqueue=enqueued.append,
        on_queue_update=updates.append,
        client_timeout=60,
    )
    assert output["images"], _explain(e2e)
    assert len(enqueued) == 1
    assert updates
    assert isinstance(updates[-1], fal_client.Completed)


def test_deleted_with_the_cli_then_fal_client_is_told_it_is_gone(e2e: E2E, sim: Any) -> None:
    """``genqueue delete`` (the CLI, a process of its own) against the live API; then the
    files' URLs are 404 and fal-client's result fetch raises 410 ``result_deleted``, where an
    empty 200 would have been handed on as an output without images."""
    client = e2e.client()
    handle = client.submit(APP, arguments=_prompt("kept, then deleted"))
    assert isinstance(handle.get(), dict)
    wait_until(lambda: _record(e2e, handle.request_id)["media_status"] == "stored", 60)
    file_url = handle.get()["images"][0]["url"]
    assert httpx.get(file_url).status_code == 200

    env = {**os.environ, "GENQUEUE_API_URL": e2e.base_url, "GENQUEUE_API_KEY": e2e.key}
    cli = Path(sys.executable).parent / "genqueue"
    done = subprocess.run(
        [str(cli), "delete", handle.request_id[:13]],  # a unique prefix is enough
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{handle.request_id}: deleted")

    assert httpx.get(file_url).status_code == 404
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        client.result(APP, handle.request_id)
    assert (raised.value.status_code, raised.value.error_type) == (410, "result_deleted")
    assert isinstance(client.status(APP, handle.request_id), fal_client.Completed)


def test_cancel(e2e: E2E, sim: Any) -> None:
    sim.configure(run_time=20.0, capacity=4, honor_cancel=True)
    client = e2e.client()
    handle = client.submit(APP, arguments=_prompt("cancel me"))
    handle.cancel()
    final = list(handle.iter_events(interval=0.1))[-1]
    assert isinstance(final, fal_client.Completed), _explain(e2e)
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        handle.get()
    assert raised.value.status_code == 499
    with pytest.raises(fal_client.client.FalClientHTTPError) as again:
        handle.cancel()
    assert again.value.status_code == 400


def test_cancel_while_running_upstream(e2e: E2E, sim: Any) -> None:
    sim.configure(run_time=20.0, capacity=4, honor_cancel=True)
    client = e2e.client()
    handle = client.submit(APP, arguments=_prompt("cancel me later"))
    for status in handle.iter_events(interval=0.1):
        if isinstance(status, fal_client.InProgress):
            break
        assert not isinstance(status, fal_client.Completed), _explain(e2e)
    handle.cancel()
    final = list(handle.iter_events(interval=0.1))[-1]
    assert isinstance(final, fal_client.Completed)
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        handle.get()
    assert raised.value.status_code == 499, _explain(e2e)


def test_upstream_failure_reaches_the_client_as_upstream_said(e2e: E2E, sim: Any) -> None:
    arguments = _prompt("flagged")
    body = {
        "detail": [
            {
                "loc": ["body", "prompt"],
                "msg": "flagged by the safety checker",
                "type": "content_policy_violation",
            }
        ]
    }
    sim.add_fault(
        op="submit",
        kind="model_error",
        status_code=422,
        body=body,
        error_type="content_policy_violation",
        match_prompt=arguments["prompt"],
    )
    handle = e2e.client().submit(APP, arguments=arguments)
    final = list(handle.iter_events(interval=0.1))[-1]
    assert isinstance(final, fal_client.Completed)
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        handle.get()
    assert raised.value.status_code == 422, _explain(e2e)
    assert raised.value.response.json() == body


def test_fal_client_against_a_wrong_key_gets_401(e2e: E2E) -> None:
    client = e2e.client(key="gq_wrong", timeout=10)
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        client.submit(MODEL, arguments={"prompt": "x"})
    assert raised.value.status_code == 401
    assert "Invalid" in raised.value.message


def test_run_answers_the_model_output(e2e: E2E, sim: Any) -> None:
    """fal-client's run() (fal's synchronous surface) gets the output, not the queue handle."""
    arguments = _prompt("run and wait")
    output = e2e.client().run(APP, arguments=arguments)
    assert "request_id" not in output, "the output, not a queue handle"
    assert output["prompt"] == arguments["prompt"]
    image = output["images"][0]
    assert image["url"].startswith(f"{e2e.base_url}/media/"), _explain(e2e)  # genqueue's copy
    page = httpx.get(
        f"{e2e.base_url}/v1/generations",
        params={"status": "completed"},
        headers={"Authorization": f"Key {e2e.key}"},
    ).json()
    # (a deleted generation's tombstone, from another test here, has no input left)
    [record] = [g for g in page["items"] if g["input"].get("prompt") == arguments["prompt"]]
    [listed] = record["result"]["images"]
    assert listed["url"] == image["url"], "the list hands out genqueue's URL too"
    assert listed["upstream_url"].startswith(e2e.stack.sim_url)
    copy, upstream = httpx.get(image["url"]), httpx.get(listed["upstream_url"])
    assert copy.status_code == 200
    assert copy.content == upstream.content
    assert {**record["result"], "images": [image]} == output, "stored and followed like any job"
    # run() waited for the copy, so the worker listed its file as awaited: copied first.
    engine = make_engine(e2e.settings.database_url)
    try:
        with make_session_factory(engine)() as session:
            gen = session.get(Generation, uuid.UUID(record["id"]))
            assert gen is not None
            awaited = session.scalars(
                select(MediaFile.awaited_until).where(MediaFile.generation_id == gen.id)
            ).all()
    finally:
        engine.dispose()
    assert gen.copy_awaited
    assert gen.completed_at is not None
    assert awaited == [gen.completed_at + timedelta(seconds=e2e.settings.media_wait)]


def test_run_answers_a_failure_in_fals_format(e2e: E2E, sim: Any) -> None:
    arguments = _prompt("run into a wall")
    body = {"detail": "Runner disconnected", "error_type": "runner_disconnected"}
    sim.add_fault(
        op="submit",
        kind="model_error",
        status_code=503,
        body=body,
        error_type="runner_disconnected",
        match_prompt=arguments["prompt"],
    )
    with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
        e2e.client().run(APP, arguments=arguments)
    assert raised.value.status_code == 503, _explain(e2e)
    assert raised.value.response.json() == body
    assert raised.value.response.headers["x-fal-request-id"]


def test_run_that_takes_too_long_names_the_request_to_follow(e2e: E2E, sim: Any) -> None:
    sim.configure(run_time=20.0, capacity=4, honor_cancel=True)
    impatient = create_app(e2e.settings.model_copy(update={"run_timeout": 2.0}))
    with live_server(impatient) as base_url:
        previous = fal_module.RUN_URL_FORMAT
        fal_module.RUN_URL_FORMAT = base_url + "/run/"
        try:
            started = time.monotonic()
            with pytest.raises(fal_client.client.FalClientHTTPError) as raised:
                e2e.client().run(APP, arguments=_prompt("slow"))
            waited = time.monotonic() - started
        finally:
            fal_module.RUN_URL_FORMAT = previous
            impatient.state.genqueue.close()
    error = raised.value
    assert error.status_code == 504
    assert 2.0 <= waited < 10, "one bounded wait, never retried"
    request_id = error.response.headers["x-fal-request-id"]
    assert f"request {request_id} did not finish within 2 s" in str(error)
    assert error.response.json()["status_url"] in str(error)
    status = e2e.client().status(APP, request_id)  # it goes on, and can be followed
    assert isinstance(status, fal_client.Queued | fal_client.InProgress)


def test_stream_is_refused_with_a_message_that_says_why(e2e: E2E, sim: Any) -> None:
    events = list(e2e.client().stream(APP, arguments=_prompt("stream me")))
    assert len(events) == 1
    assert events[0]["error_type"] == "streaming_not_supported"
    assert "no streaming surface" in events[0]["detail"]
    answer = httpx.post(
        f"{e2e.base_url}/run/{APP}/stream",
        json=_prompt("stream me"),
        headers={"Authorization": f"Key {e2e.key}"},
    )
    assert answer.status_code == 400
