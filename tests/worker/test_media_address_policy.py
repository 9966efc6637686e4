"""The copy client applies the client webhooks' address policy (models/destinations.py through
ssrfguard): a result that names an inside address copies nothing and fails for good, a
redirect to one too; an operator who allows private addresses (``genqueue up``, the tests'
simulator) reaches them."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from models.destinations import AddressPolicy
from models.media_store import open_store
from worker.lifecycle.media import media_http
from worker.lifecycle.media_copy import BLOCKED, CopyRejected, copy_file

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100


class Cdn:
    """A CDN on 127.0.0.1: ``/file`` answers the PNG, ``/moved`` redirects to ``target``."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.target = ""
        self.url = ""


@contextmanager
def local_cdn() -> Iterator[Cdn]:
    cdn = Cdn()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            cdn.requests.append(self.path)
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", cdn.target)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    cdn.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield cdn
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def copy(policy: AddressPolicy, url: str, tmp_path: Path) -> None:
    store = open_store(f"file://{tmp_path}")
    with media_http(5.0, 2, policy) as http:
        copy_file(http, store, url=url, key="g/0", max_bytes=10_000, timeout=5)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/file",
        "http://localhost:{port}/file",
        "http://0x7f000001:{port}/file",  # loopback in a legacy spelling
        "http://[::1]:{port}/file",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1/file",
    ],
)
def test_an_inside_address_is_refused_and_nothing_is_fetched(url: str, tmp_path: Path) -> None:
    with local_cdn() as cdn:
        port = cdn.url.rsplit(":", 1)[1]
        with pytest.raises(CopyRejected, match=BLOCKED):
            copy(AddressPolicy(), url.format(port=port), tmp_path)
        assert cdn.requests == []
    assert open_store(f"file://{tmp_path}").keys() == []


def test_a_redirect_to_an_inside_address_is_refused(tmp_path: Path) -> None:
    with local_cdn() as cdn:
        cdn.target = f"http://127.0.0.2:{cdn.url.rsplit(':', 1)[1]}/file"
        # 127.0.0.1 alone is allowed (as an operator's GENQUEUE_WEBHOOK_ALLOWED_NETWORKS may):
        # the CDN answers, its redirect elsewhere inside is checked again and refused.
        policy = AddressPolicy(allowed_networks=("127.0.0.1/32",))
        with pytest.raises(CopyRejected, match=BLOCKED):
            copy(policy, f"{cdn.url}/moved", tmp_path)
        assert cdn.requests == ["/moved"]


def test_an_operator_who_allows_private_addresses_reaches_them(tmp_path: Path) -> None:
    with local_cdn() as cdn:
        copy(AddressPolicy(allow_private=True), f"{cdn.url}/file", tmp_path)
        assert cdn.requests == ["/file"]
    assert open_store(f"file://{tmp_path}").read_all("g/0") == PNG
