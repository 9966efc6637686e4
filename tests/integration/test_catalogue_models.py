"""Every built-in model of the catalogue, end to end: created through the API, submitted by a
real worker to the simulator over HTTP, its output (images, a video, speech) recorded and its
files copied into genqueue's media store; and an unlisted model, passed when the operator
allows it."""

import hashlib
import io
import uuid
import wave
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from models import tasknames
from models.catalogue import builtin_catalogue
from models.files import file_objects
from models.keys import create_key
from models.media_store import open_store
from models.settings import Settings
from tests.api.support import auth
from tests.integration.test_media import media_files, wait_media
from tests.support.jobs import Jobs
from tests.support.stack import SimAdmin, Stack

pytestmark = pytest.mark.integration

RUN_TIME = 0.02
"""The seed model's run in the simulator: the video model (300 s in the catalogue, 6 s the
seed's) runs 50 times as long, one second."""
CONTENT_TYPES = {"image": "image/", "video": "video/mp4", "audio": "audio/wav"}
SOURCE_IMAGE = "https://example.com/source.png"


class CeleryPublisher:
    """The API's publisher, on the stack's broker (the worker gets what the API publishes)."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def publish(self, task_name: str, args: Any) -> None:
        self.celery.send_task(task_name, args=list(args), queue=tasknames.QUEUE)

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def api(stack: Stack, pg_url: str, publisher: Celery) -> Iterator[TestClient]:
    settings = Settings(
        database_url=pg_url,
        data_dir=Path(stack.dir),
        broker_url=stack.broker_url,
        allow_unlisted_models=True,
    )
    with TestClient(create_app(settings, publisher=CeleryPublisher(publisher))) as client:
        yield client


@pytest.fixture(scope="module")
def key(pg_sessions: sessionmaker[Session]) -> str:
    with pg_sessions.begin() as session:
        _, plain = create_key(session, name=f"catalogue-{uuid.uuid4().hex[:6]}")
    return plain


def _input(endpoint_id: str, marker: str) -> dict[str, Any]:
    example = dict(builtin_catalogue()[endpoint_id].example)
    example["prompt"] = marker
    for name in ("image_url", "image_urls"):  # the simulator does not fetch them
        if name in example:
            example[name] = SOURCE_IMAGE if name == "image_url" else [SOURCE_IMAGE] * 2
    return example


def _check_bytes(kind: str, data: bytes) -> None:
    """The file is what its kind says: a picture, an MP4 with its frames, a WAV with sound."""
    if kind == "video":
        assert data[4:12] == b"ftypisom"
        assert b"moov" in data[:4096]
        assert b"mdat" in data
        assert data.count(b"\xff\xd8\xff") >= 2  # JPEG frames
    elif kind == "audio":
        with wave.open(io.BytesIO(data)) as wav:
            assert wav.getnframes() > wav.getframerate() // 4
    else:
        assert data[:3] == b"\xff\xd8\xff" or data[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("endpoint_id", list(builtin_catalogue()))
def test_every_builtin_model_round_trips_and_its_files_are_stored(
    endpoint_id: str, api: TestClient, key: str, jobs: Jobs, sim: SimAdmin, stack: Stack
) -> None:
    sim.configure(run_time=RUN_TIME)
    entry = builtin_catalogue()[endpoint_id]
    marker = f"{entry.output_kind} round trip {uuid.uuid4().hex[:6]}"
    queued = api.post(f"/{endpoint_id}", json=_input(endpoint_id, marker), headers=auth(key))
    assert queued.status_code == 200, queued.text
    gen_id = uuid.UUID(queued.json()["request_id"])
    [gen] = jobs.wait([gen_id], timeout=60)
    assert gen.status == "completed", gen.error
    assert wait_media(jobs, gen_id) == "stored"

    assert [s["endpoint"] for s in sim.submits(marker)] == [endpoint_id]
    upstream = list(file_objects(gen.result))
    assert upstream, gen.result
    if entry.output_kind != "image":
        assert [f.pointer for f in upstream] == [f"/{entry.output_kind}"]
        assert upstream[0].file_size is not None
    store = open_store(f"file://{stack.dir}/media")
    rows = media_files(jobs, gen_id)
    assert [r.pointer for r in rows] == [f.pointer for f in upstream]
    for row, found in zip(rows, upstream, strict=True):
        data = store.read_all(f"{gen_id}/{row.position}")
        assert hashlib.sha256(data).hexdigest() == row.sha256
        assert data == httpx.get(found.url).content
        assert (row.content_type or "").startswith(CONTENT_TYPES[str(entry.output_kind)])
        _check_bytes(str(entry.output_kind), data)

    record = api.get(f"/v1/generations/{gen_id}", headers=auth(key)).json()
    ours = list(file_objects(record["result"]))
    assert [f.pointer for f in ours] == [f.pointer for f in upstream]
    served = api.get(ours[0].url)
    assert served.status_code == 200
    assert served.content == store.read_all(f"{gen_id}/0")


def test_an_unlisted_model_allowed_by_the_operator_runs_end_to_end(
    api: TestClient, key: str, jobs: Jobs, sim: SimAdmin
) -> None:
    sim.configure(run_time=RUN_TIME)
    marker = f"unlisted {uuid.uuid4().hex[:6]}"
    endpoint_id = "acme-labs/fresh-model/v0"
    body = {"prompt": marker, "novel_knob": {"any": ["shape"]}}
    queued = api.post(f"/{endpoint_id}", json=body, headers=auth(key))
    assert queued.status_code == 200, queued.text
    [gen] = jobs.wait([uuid.UUID(queued.json()["request_id"])], timeout=60)
    assert gen.status == "completed", gen.error
    [submitted] = sim.submits(marker)
    assert submitted["endpoint"] == endpoint_id
    assert submitted["body"] == body
    assert gen.estimated_cost is None
