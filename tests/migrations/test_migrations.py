"""Migrations create everything on an empty database, and agree with the models."""

import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, inspect

from migrations.runner import check, upgrade
from models.db import normalize_url
from models.tables import Base
from tests.support.services import postgres_database

ROOT = Path(__file__).resolve().parents[2]


def _tables(url: str) -> set[str]:
    engine = create_engine(normalize_url(url))
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_and_check_on_empty_postgres() -> None:
    with postgres_database() as url:
        upgrade(url)
        check(url)  # raises if `alembic check` would find drift
        assert set(Base.metadata.tables) <= _tables(url)


def test_upgrade_and_check_on_empty_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    check(url)
    assert set(Base.metadata.tables) <= _tables(url)


def test_alembic_cli_from_the_repository_root(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"GENQUEUE_DATABASE_URL": url, "PATH": str(Path(sys.executable).parent)}
    for args in (["upgrade", "head"], ["check"]):
        done = subprocess.run(
            [sys.executable, "-m", "alembic", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
    assert "generations" in _tables(url)
