"""With an S3 store and ``GENQUEUE_MEDIA_PRESIGN_SECONDS``, the API hands out S3 presigned GET
URLs (obstore's ``sign``) that serve the stored bytes straight from the bucket (moto's server)."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.app import create_app
from models.settings import Settings
from tests.api.support import RecordingPublisher, auth, new_key
from tests.api.test_media import BYTES, UPSTREAM, stored_generation
from tests.support.s3 import S3Server, s3_server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server, pytest.MonkeyPatch.context() as mp:
        for name, value in server.env().items():
            mp.setenv(name, value)
        yield server


@pytest.fixture
def presigning(pg_url: str, s3: S3Server, tmp_path: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = Settings(
        database_url=pg_url,
        broker_url="redis://127.0.0.1:1/0",  # never used: the publisher is replaced
        data_dir=tmp_path,
        media_store=f"s3://{s3.bucket}/media",
        media_s3_endpoint=s3.endpoint,
        media_presign_seconds=600,
    )
    with TestClient(create_app(settings, publisher=RecordingPublisher())) as client:
        yield client, settings


def test_results_carry_presigned_urls_that_serve_the_bytes(
    presigning: tuple[TestClient, Settings], pg_sessions: sessionmaker[Session], s3: S3Server
) -> None:
    client, settings = presigning
    key = new_key(pg_sessions)
    gen_id, record = stored_generation(client, key, pg_sessions, settings)
    image = record["result"]["images"][0]
    assert image["url"].startswith(f"{s3.endpoint}/{s3.bucket}/media/{gen_id}/0?")
    assert "X-Amz-Expires=600" in image["url"]
    assert "X-Amz-Signature=" in image["url"]
    assert image["upstream_url"] == UPSTREAM
    response = httpx.get(image["url"])
    assert (response.status_code, response.content) == (200, BYTES)
    fal = client.get(f"/fal-ai/flux-pro/requests/{gen_id}", headers=auth(key)).json()
    assert fal["images"][0]["url"].startswith(f"{s3.endpoint}/{s3.bucket}/media/{gen_id}/0?")
