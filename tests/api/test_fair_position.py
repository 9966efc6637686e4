"""Local queue positions under fair scheduling: what ``/v1``'s ``local_queue_position`` and the
fal surface's ``queue_position`` say while a job is pending, against the order the claim then
really takes the jobs in (a private database, the app and the worker's claim in-process)."""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from models.settings import Settings
from models.status import LIVE, GenerationStatus
from models.tables import Generation, GenerationEvent
from models.tenants import set_tenant
from tests.api.support import MODEL, RecordingPublisher, auth, new_key
from tests.worker.lifecycle_support import lifecycle_env
from worker.context import Limits
from worker.lifecycle.submit_batch import submit_generations

CAP = 1


@pytest.fixture(scope="module")
def fair_client(
    private_sessions: sessionmaker[Session], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestClient]:
    bind = private_sessions.kw["bind"]
    assert isinstance(bind, Engine)
    settings = Settings(
        database_url=bind.url.render_as_string(hide_password=False),
        broker_url="redis://127.0.0.1:1/0",  # never used: the publisher is replaced
        data_dir=Path(tmp_path_factory.mktemp("fair-api")),
        max_in_flight=CAP,
    )
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:
        yield client


def create(client: TestClient, key: str, n: int) -> list[str]:
    body = {"model": MODEL, "input": {"prompt": "p"}}
    ids = []
    for _ in range(n):
        answer = client.post("/v1/generations", json=body, headers=auth(key))
        assert answer.status_code == 201, answer.text
        ids.append(answer.json()["id"])
    return ids


def position(client: TestClient, key: str, generation_id: str) -> int:
    record = client.get(f"/v1/generations/{generation_id}", headers=auth(key)).json()
    local: int = record["local_queue_position"]
    fal = client.get(f"/fal-ai/flux-pro/requests/{generation_id}/status", headers=auth(key))
    assert fal.status_code == 202, fal.text
    assert fal.json()["queue_position"] == local
    return local


def test_positions_follow_the_fair_order(
    fair_client: TestClient, private_sessions: sessionmaker[Session]
) -> None:
    flood_key = new_key(private_sessions)
    small_key = new_key(private_sessions)
    heavy_name = f"heavy-{uuid.uuid4().hex[:6]}"
    heavy_key = new_key(private_sessions, tenant=heavy_name)
    with private_sessions.begin() as session:
        set_tenant(session, heavy_name, {"weight": 2.0})
    flood = create(fair_client, flood_key, 12)
    small = create(fair_client, small_key, 1)
    heavy = create(fair_client, heavy_key, 4)
    keys = {**dict.fromkeys(flood, flood_key), **dict.fromkeys(small, small_key)}
    keys.update(dict.fromkeys(heavy, heavy_key))
    said = {i: position(fair_client, k, i) for i, k in keys.items()}
    assert said[small[0]] <= 2  # first come, first served would say 12
    assert sorted(said.values())[:3] == [0, 1, 2]
    # The fal submit answers with the same order's position, not a count of all waiting.
    late_key = new_key(private_sessions)
    late = fair_client.post(f"/{MODEL}", json={"prompt": "late"}, headers=auth(late_key))
    assert late.status_code == 200, late.text
    assert late.json()["queue_position"] <= 3
    assert late.json()["queue_position"] == position(
        fair_client, late_key, late.json()["request_id"]
    )
    keys[late.json()["request_id"]] = late_key
    said[late.json()["request_id"]] = late.json()["queue_position"]

    limits = Limits(max_in_flight=CAP, lease_seconds=5.0, submit_grace=0.5)
    with lifecycle_env(private_sessions, limits=limits) as (ctx, _, _):
        every = [uuid.UUID(i) for i in keys]
        for _ in range(len(keys)):
            submit_generations(ctx, every[:1])
            with private_sessions.begin() as session:  # its slot frees: upstream finished it
                session.execute(
                    update(Generation)
                    .where(Generation.status.in_([s.value for s in LIVE]))
                    .values(status=GenerationStatus.COMPLETED.value, lease_token=None)
                )
    with private_sessions() as session:
        order = [
            str(i)
            for i in session.scalars(
                select(GenerationEvent.generation_id)
                .where(
                    GenerationEvent.generation_id.in_(every),
                    GenerationEvent.status == GenerationStatus.SUBMITTING.value,
                )
                .order_by(GenerationEvent.id)
            )
        ]
    assert len(order) == len(keys)
    actual = {gen_id: n for n, gen_id in enumerate(order)}
    # An estimate: off by at most the other tenants' jobs that tie with it.
    assert all(abs(said[i] - actual[i]) <= 2 for i in keys), (said, actual)
    assert actual[small[0]] <= 2
