"""Settings read from the environment: what an empty variable means."""

import pytest

from models.settings import DEFAULT_UPSTREAM_URL, Settings


def test_an_empty_upstream_key_does_not_hide_fal_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENQUEUE_UPSTREAM_KEY", "")
    monkeypatch.setenv("FAL_KEY", "fal-key-from-env")
    assert Settings().upstream_key_value() == "fal-key-from-env"


def test_both_upstream_key_names_empty_mean_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENQUEUE_UPSTREAM_KEY", "")
    monkeypatch.setenv("FAL_KEY", "")
    assert Settings().upstream_key_value() is None


def test_an_empty_variable_takes_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENQUEUE_UPSTREAM_URL", "")
    monkeypatch.setenv("GENQUEUE_API_PORT", "")
    settings = Settings()
    assert settings.upstream_url == DEFAULT_UPSTREAM_URL
    assert settings.api_port == 8000
