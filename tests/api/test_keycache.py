"""The key cache on its own: digests only, a time limit, and a bounded size."""

import uuid

import pytest

from api import auth
from api.auth import Caller, KeyCache

WHO = Caller(tenant_id=uuid.uuid4(), key_id=uuid.uuid4())


def test_a_key_is_remembered_until_its_ttl_then_forgotten() -> None:
    now = [0.0]
    cache = KeyCache(ttl=2.0, clock=lambda: now[0])
    assert cache.get("gq_secret") is None
    cache.put("gq_secret", WHO)
    assert cache.get("gq_secret") == WHO
    assert cache.get("gq_other") is None
    now[0] = 1.99
    assert cache.get("gq_secret") == WHO
    now[0] = 2.0
    assert cache.get("gq_secret") is None


def test_the_plain_key_is_never_held() -> None:
    cache = KeyCache(ttl=60.0)
    cache.put("gq_plain-key-4f1a", WHO)
    assert "gq_plain-key-4f1a" not in repr(vars(cache))


def test_a_zero_ttl_turns_the_cache_off() -> None:
    cache = KeyCache(ttl=0.0)
    cache.put("gq_k", WHO)
    assert cache.get("gq_k") is None


def test_the_cache_never_grows_past_its_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(auth, "MAX_CACHED", 10)
    now = [0.0]
    cache = KeyCache(ttl=5.0, clock=lambda: now[0])
    for i in range(25):
        cache.put(f"gq_{i}", WHO)
        assert len(cache._entries) <= 10
    assert cache.get("gq_24") == WHO
