"""The media store against a local directory and a real S3-compatible server (moto)."""

import hashlib
import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from models.media_store import WRITE_BUFFER, MediaStore, StoredObjectMissing, open_store
from models.settings import Settings
from tests.support.s3 import s3_server

DATA = bytes(range(256)) * 4096  # 1 MiB, every byte value


@pytest.fixture(scope="module")
def s3_store() -> Iterator[MediaStore]:
    with s3_server() as server, pytest.MonkeyPatch.context() as mp:
        for name, value in server.env().items():
            mp.setenv(name, value)
        yield open_store(f"s3://{server.bucket}/media", endpoint=server.endpoint)


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    if request.param == "local":
        return open_store(f"file://{tmp_path}/media")
    s3: MediaStore = request.getfixturevalue("s3_store")
    return s3


def _chunks(data: bytes, size: int = 100_000) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_put_streams_then_reads_back_whole_and_in_ranges(store: MediaStore) -> None:
    key = f"t/{os.urandom(4).hex()}/0"
    store.put(key, _chunks(DATA))
    assert store.head(key).size == len(DATA)
    assert hashlib.sha256(store.read_all(key)).digest() == hashlib.sha256(DATA).digest()
    assert b"".join(store.read(key, 10, 20)) == DATA[10:20]
    assert b"".join(store.read(key, len(DATA) - 5)) == DATA[-5:]


@pytest.mark.parametrize(
    "before", [1000, WRITE_BUFFER + len(DATA)], ids=["in the first part", "after the first part"]
)
def test_a_write_whose_source_fails_leaves_nothing(store: MediaStore, before: int) -> None:
    key = f"t/{os.urandom(4).hex()}/0"

    def broken() -> Iterator[bytes]:
        yield from _chunks((DATA * (before // len(DATA) + 1))[:before], 1024 * 1024)
        raise OSError("the source broke")

    with pytest.raises(OSError, match="the source broke"):
        store.put(key, broken())
    with pytest.raises(StoredObjectMissing):
        store.head(key)
    assert store.keys(key) == []


def test_an_object_larger_than_the_write_buffer_goes_up_in_parts_whole(
    store: MediaStore,
) -> None:
    key = f"t/{os.urandom(4).hex()}/0"
    big = DATA * (WRITE_BUFFER // len(DATA)) + DATA[:12345]  # more than one part
    store.put(key, _chunks(big, 1024 * 1024))
    assert store.head(key).size == len(big)
    assert hashlib.sha256(store.read_all(key)).digest() == hashlib.sha256(big).digest()


def test_a_second_write_replaces_the_first_under_the_same_key(store: MediaStore) -> None:
    prefix = f"t/{os.urandom(4).hex()}"
    store.put(f"{prefix}/0", [b"first"])
    store.put(f"{prefix}/0", [b"second"])
    assert store.keys(prefix) == [f"{prefix}/0"]
    assert store.read_all(f"{prefix}/0") == b"second"


def test_delete_then_missing_and_deleting_again_is_fine(store: MediaStore) -> None:
    key = f"t/{os.urandom(4).hex()}/0"
    store.put(key, [b"x"])
    store.delete(key)
    with pytest.raises(StoredObjectMissing):
        store.head(key)
    with pytest.raises(StoredObjectMissing):
        store.read(key)
    store.delete(key)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://host/x", "scheme must be file:// or s3://"),
        ("file://relative/dir", "absolute path"),
        ("s3:///prefix", "names a bucket"),
    ],
)
def test_a_store_url_it_cannot_use_is_refused_by_name(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        open_store(url)
    # and by the settings, when they are read: one line at start-up, not every task failing
    with pytest.raises(ValueError, match=f"media store '{url}': .*{problem}"):
        Settings(media_store=url)


def test_a_presigned_url_serves_the_object_with_its_type_without_credentials(
    s3_store: MediaStore,
) -> None:
    key = "presigned/0"
    s3_store.put(key, _chunks(DATA), content_type="image/png")
    [url] = s3_store.sign([key], timedelta(minutes=5))
    assert "X-Amz-Signature=" in url
    assert "X-Amz-Expires=300" in url
    response = httpx.get(url)  # no credentials: the URL is the permission
    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "image/png"
    # (moto does not check signatures, so refusing a forged one is S3's to prove, not ours)


def test_a_directory_cannot_presign(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    assert not store.can_sign


def test_settings_refuse_presigning_without_an_s3_store() -> None:
    with pytest.raises(ValueError, match="needs an s3:// GENQUEUE_MEDIA_STORE"):
        Settings(media_presign_seconds=60, media_store="file:///tmp/x")
    with pytest.raises(ValueError, match="not both"):
        Settings(
            media_presign_seconds=60,
            media_store="s3://bucket/media",
            media_public_base="https://cdn.example",
        )
    with pytest.raises(ValueError, match="less than or equal to 604800"):
        Settings(media_presign_seconds=604801, media_store="s3://bucket/media")
