"""Fixtures: a fake upstream and a client (relay base, Bearer token) wired to it."""

from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from tests.worker.upstream.fakes import BASE, KEY, FakeUpstream
from worker.upstream import UpstreamClient


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
def client(fake: FakeUpstream) -> Iterator[UpstreamClient]:
    with UpstreamClient(
        base_url=BASE,
        key=SecretStr(KEY),
        auth_scheme="Bearer",
        transport=httpx.MockTransport(fake),
    ) as upstream:
        yield upstream
