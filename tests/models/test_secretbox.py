"""Secrets at rest: sealed with a key derived from GENQUEUE_SECRET_KEY or a 0600 key file in the
data dir; what is stored never contains the secret, and another key cannot open it."""

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydantic import ValidationError

from models.secretbox import KEY_FILE, SecretBox, SecretUnreadable, key_file_secret, secret_box
from models.settings import Settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_sealed_text_does_not_contain_the_secret_and_opens_again() -> None:
    box = SecretBox("m" * 32)
    sealed = box.seal(SECRET)
    assert SECRET not in sealed
    assert SECRET.removeprefix("whsec_") not in sealed
    assert box.open(sealed) == SECRET
    assert box.seal(SECRET) != sealed  # a fresh IV each time
    assert "m" * 32 not in repr(box)


def test_another_key_cannot_open_it() -> None:
    sealed = SecretBox("m" * 32).seal(SECRET)
    with pytest.raises(SecretUnreadable):
        SecretBox("n" * 32).open(sealed)


def test_the_key_file_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    sealed = secret_box(settings).seal(SECRET)
    key_file = data / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert secret_box(Settings(data_dir=data)).open(sealed) == SECRET  # the next process
    key_file.chmod(0o644)
    secret_box(settings)
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600  # tightened when found loose


def test_concurrent_first_uses_agree_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    with ThreadPoolExecutor(8) as pool:
        found = set(pool.map(lambda _: key_file_secret(path), range(16)))
    assert len(found) == 1
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE]


def test_the_secret_key_setting_is_used_when_set(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, secret_key="k" * 32)
    sealed = secret_box(settings).seal(SECRET)
    assert not (tmp_path / KEY_FILE).exists()
    assert SecretBox("k" * 32).open(sealed) == SECRET


def test_a_short_secret_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(secret_key="too-short-a-secret")
    assert "too-short-a-secret" not in str(caught.value)
    assert "at least 32 characters" in str(caught.value)
