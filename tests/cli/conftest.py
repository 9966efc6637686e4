"""Run the CLI in-process the way the console script does, capturing its two streams."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from genqueue.cli import main
from tests.cli.stub_api import StubApi, stub_api

CLIENT_ENV = ("GENQUEUE_API_URL", "GENQUEUE_API_KEY")


@dataclass
class Run:
    code: int
    out: str
    err: str


class Cli(Protocol):
    """``genqueue`` with these arguments, run in-process."""

    def __call__(self, *args: str) -> Run: ...


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    monkeypatch.setenv("GENQUEUE_DATA_DIR", str(tmp_path / "data"))
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)

    def run(*args: str) -> Run:
        capsys.readouterr()
        monkeypatch.setattr("sys.argv", ["genqueue", *args])
        code = main()
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubApi]:
    with stub_api() as stub:
        monkeypatch.setenv("GENQUEUE_API_URL", stub.url)
        monkeypatch.setenv("GENQUEUE_API_KEY", "gq_test_key")
        monkeypatch.setattr("genqueue.generations.POLL_INTERVAL", 0.05)
        yield stub
