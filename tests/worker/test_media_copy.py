"""One file's copy, over an ``httpx.MockTransport`` (a unit test of the piece): the content
type comes from the bytes, the header is only noted; what fails is sorted transient or not."""

import hashlib
from pathlib import Path

import httpx
import pytest

from models.media_store import open_store
from worker.lifecycle.media_copy import CopyRejected, CopyTransient, copy_file
from worker.lifecycle.sniff import sniff

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 2000


def client(status: int, body: bytes, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(
        transport=httpx.MockTransport(
            lambda _: httpx.Response(status, stream=httpx.ByteStream(body), headers=headers)
        )
    )


def test_the_type_is_the_bytes_and_a_header_that_disagrees_is_noted(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    with client(200, JPEG, {"content-type": "image/png; charset=binary"}) as http:
        copied = copy_file(http, store, url="https://cdn/x", key="g/0", max_bytes=10_000, timeout=5)
    assert (copied.content_type, copied.declared_type, copied.mismatch) == (
        "image/jpeg",
        "image/png",
        True,
    )
    assert copied.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert copied.size == len(JPEG)
    assert store.read_all("g/0") == JPEG


def test_html_under_an_image_header_is_kept_as_opaque_bytes(tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    with client(200, b"<html><script>x</script>", {"content-type": "image/png"}) as http:
        copied = copy_file(http, store, url="https://cdn/x", key="g/0", max_bytes=10_000, timeout=5)
    assert copied.content_type == "application/octet-stream"


@pytest.mark.parametrize(
    ("status", "headers", "error", "message"),
    [
        (404, {}, CopyRejected, "HTTP 404"),
        (403, {}, CopyRejected, "HTTP 403"),
        (503, {}, CopyTransient, "HTTP 503"),
        (429, {}, CopyTransient, "HTTP 429"),
        (200, {"content-length": "99999"}, CopyRejected, "over the size limit of 10000 bytes"),
    ],
)
def test_failures_are_sorted_transient_or_for_good(
    tmp_path: Path, status: int, headers: dict[str, str], error: type[Exception], message: str
) -> None:
    store = open_store(f"file://{tmp_path}")
    body = b"x" * 99999 if "content-length" in headers else b""
    with client(status, body, headers) as http, pytest.raises(error, match=message):
        copy_file(http, store, url="https://cdn/x", key="g/0", max_bytes=10_000, timeout=5)
    assert store.keys() == []


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n....", "image/png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "image/webp"),
        (b"\x00\x00\x00\x18ftypisom", "video/mp4"),
        (b"GIF89a", "image/gif"),
        (b"<!doctype html>", "application/octet-stream"),
    ],
)
def test_sniff(head: bytes, kind: str) -> None:
    assert sniff(head) == kind
