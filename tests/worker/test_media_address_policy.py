"""The copy client applies the client webhooks' address policy (models/destinations.py through
ssrfguard): a result that names an inside address copies nothing and fails for good, a
redirect to one too; an operator who allows private addresses (``genqueue up``, the tests'
simulator) reaches them."""

from pathlib import Path

import pytest

from models.destinations import AddressPolicy
from models.media_store import open_store
from tests.support.cdn import PNG, local_cdn
from worker.lifecycle.media import media_http
from worker.lifecycle.media_copy import BLOCKED, CopyRejected, copy_file


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
