"""The installed `genqueue` script from any directory: migrate, keys, help, settings."""

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from genqueue.datadir import DataDir


def genqueue(
    *args: str, cwd: Path, data_dir: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENQUEUE_")} | (env or {})
    env["GENQUEUE_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "genqueue", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A working directory with nothing of the repository in it."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def test_help_lists_every_command(elsewhere: Path, tmp_path: Path) -> None:
    run = genqueue("--help", cwd=elsewhere, data_dir=tmp_path / "d")
    assert run.returncode == 0, run.stderr
    for command in (
        "up",
        "api",
        "worker",
        "beat",
        "flower",
        "simulator",
        "migrate",
        "keys",
        "tenants",
        "usage",
        "submit",
        "status",
        "cancel",
        "ls",
    ):
        assert re.search(rf"\b{command}\b", run.stdout), command


def test_migrate_then_keys_from_any_directory(elsewhere: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = genqueue("migrate", cwd=elsewhere, data_dir=data)
    assert run.returncode == 0, run.stderr
    assert (data / "genqueue.db").exists()

    created = genqueue("keys", "create", "alice", cwd=elsewhere, data_dir=data)
    assert created.returncode == 0, created.stderr
    assert re.fullmatch(r"gq_[A-Za-z0-9_-]{20,}\n", created.stdout), created.stdout
    key = created.stdout.strip()

    listed = genqueue("keys", "list", cwd=elsewhere, data_dir=data)
    assert listed.returncode == 0, listed.stderr
    assert key[:10] in listed.stdout
    assert "alice" in listed.stdout
    assert key not in listed.stdout, "keys are shown once, at creation"

    revoked = genqueue("keys", "revoke", key[:10], cwd=elsewhere, data_dir=data)
    assert revoked.returncode == 0, revoked.stderr
    again = genqueue("keys", "revoke", key[:10], cwd=elsewhere, data_dir=data)
    assert again.returncode == 1
    assert again.stderr.startswith("error: no live key")


def test_a_tenants_webhook_secret_is_printed_alone_and_rotated(
    elsewhere: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    assert genqueue("keys", "create", "carol", cwd=elsewhere, data_dir=data).returncode == 0
    shown = genqueue("tenants", "webhook-secret", "carol", cwd=elsewhere, data_dir=data)
    assert shown.returncode == 0, shown.stderr
    [secret] = shown.stdout.splitlines()
    assert secret.startswith("whsec_")
    assert (data / "secret.key").stat().st_mode & 0o777 == 0o600
    again = genqueue("tenants", "webhook-secret", "carol", cwd=elsewhere, data_dir=data)
    assert again.stdout.splitlines() == [secret]
    rotated = genqueue(
        "tenants", "webhook-secret", "carol", "--rotate", cwd=elsewhere, data_dir=data
    )
    [new] = rotated.stdout.splitlines()
    assert new.startswith("whsec_")
    assert new != secret
    assert secret.encode() not in (data / "genqueue.db").read_bytes()
    missing = genqueue("tenants", "webhook-secret", "dave", cwd=elsewhere, data_dir=data)
    assert missing.returncode != 0
    assert missing.stdout == ""
    assert "no tenant named 'dave'" in missing.stderr


def test_keys_create_on_a_fresh_data_dir_migrates_it(elsewhere: Path, tmp_path: Path) -> None:
    run = genqueue("keys", "create", "bob", cwd=elsewhere, data_dir=tmp_path / "fresh")
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("gq_")


def test_flower_refuses_to_run_without_a_password(elsewhere: Path, tmp_path: Path) -> None:
    run = genqueue("flower", cwd=elsewhere, data_dir=tmp_path / "d")
    assert run.returncode != 0
    assert "GENQUEUE_FLOWER_PASSWORD" in run.stderr


@pytest.mark.parametrize("password", ["change-me", "CHANGEME", "password", "admin", "short"])
@pytest.mark.parametrize("command", ["flower", "up"])
def test_flower_and_up_refuse_a_placeholder_password(
    elsewhere: Path, tmp_path: Path, command: str, password: str
) -> None:
    data = tmp_path / "data"
    run = genqueue(
        command, cwd=elsewhere, data_dir=data, env={"GENQUEUE_FLOWER_PASSWORD": password}
    )
    assert run.returncode == 2, run.stdout
    [line] = run.stderr.splitlines()
    assert line.startswith("error: GENQUEUE_FLOWER_PASSWORD "), line
    assert not data.exists(), "refused before anything was created"


@pytest.mark.parametrize(
    "args",
    [["keys", "create", ""], ["keys", "create", "   "], ["keys", "create", "ops", "--tenant", ""]],
)
def test_a_key_needs_a_name_and_a_tenant(elsewhere: Path, tmp_path: Path, args: list[str]) -> None:
    data = tmp_path / "data"
    run = genqueue(*args, cwd=elsewhere, data_dir=data)
    assert run.returncode == 2, run.stdout
    assert run.stdout == ""
    [line] = run.stderr.splitlines()
    assert line.startswith("error: ")
    assert "must not be empty" in line
    listed = genqueue("keys", "list", cwd=elsewhere, data_dir=data)
    assert listed.returncode == 0
    assert listed.stdout == "", "no key was created"


def test_a_refused_up_leaves_no_lock_file(elsewhere: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = genqueue("up", "--port", str(port), cwd=elsewhere, data_dir=data)
    assert run.returncode == 1
    [line] = run.stderr.splitlines()
    assert line == f"error: port {port} for the API is in use; choose another with --port"
    assert not (data / "up.lock").exists()


def test_up_refuses_a_data_dir_in_use_and_the_holder_keeps_it(
    elsewhere: Path, tmp_path: Path
) -> None:
    data = DataDir(tmp_path / "data")
    data.root.mkdir()
    with data.locked():
        assert data.lock_file.read_text() == str(os.getpid())
        run = genqueue("up", cwd=elsewhere, data_dir=data.root)
        assert run.returncode == 1
        [line] = run.stderr.splitlines()
        assert f"another `genqueue up` (pid {os.getpid()}) is using {data.root}" in line
        assert data.lock_file.read_text() == str(os.getpid()), "the holder's lock is untouched"
    assert not data.lock_file.exists(), "released: the lock file goes with it"
    with data.locked():  # and it can be taken again
        assert data.lock_file.exists()
