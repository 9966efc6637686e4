"""The banner of `genqueue up` points at the API's /metrics where it really answers."""

import pytest

from genqueue.up import api_metrics_url, console_url
from genqueue.up_children import Plan
from models.settings import Settings

PLAN = Plan(
    host="127.0.0.1",
    api_port=8000,
    flower_port=5555,
    metrics_port=40213,
    redis_dir=None,
    simulator_port=None,
)


def test_metrics_on_the_api_port_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GENQUEUE_METRICS_PORT", raising=False)
    monkeypatch.delenv("GENQUEUE_METRICS_TOKEN", raising=False)
    assert api_metrics_url(Settings(), PLAN) == "http://127.0.0.1:8000/metrics"


def test_metrics_on_their_own_listener_when_a_port_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENQUEUE_METRICS_HOST", "0.0.0.0")
    monkeypatch.setenv("GENQUEUE_METRICS_PORT", "9807")
    monkeypatch.setenv("GENQUEUE_METRICS_TOKEN", "a-token-of-sixteen-chars")
    assert api_metrics_url(Settings(), PLAN) == "http://127.0.0.1:9807/metrics (Bearer token)"


def test_the_console_is_on_the_api_port() -> None:
    assert console_url(PLAN) == "http://127.0.0.1:8000/console"
