"""`genqueue ls` and `genqueue keys list` in a real terminal (a pty) of 80 columns and up, and
through a pipe: the id and the status stay whole, the prompt gives way, a pipe gets plain
tab-separated columns."""

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import pytest
from rich.cells import cell_len

from genqueue.columns import table_lines
from genqueue.render import list_columns
from tests.cli.stub_api import StubApi

WIDTHS = [80, 100, 120, 140, 200]
LONG_PROMPT = (
    "Extreme close-up of a single tiger eye, direct frontal view. Detailed iris and pupil. "
    "Sharp focus on eye texture and color."
)
RECORDS: list[dict[str, Any]] = [
    {
        "id": "5d7e0c1a-9a3e-4b8e-a6f1-1c2d3e4f5a6b",
        "model": "fal-ai/flux-pro/kontext/text-to-image",
        "status": "submitting",
        "queue_position": 12,
        "input": {"prompt": LONG_PROMPT},
        "created_at": "2026-11-24T10:00:00Z",
    },
    {
        "id": "0b6a8f5e-2f6c-4a4b-9f5e-6d1f0c8a1e11",
        "model": "fal-ai/flux-pro/kontext/text-to-image",
        "status": "completed",
        "queue_position": None,
        "input": {"prompt": "虎の目 — a tiger eye\nwith the word FLUX"},
        "created_at": "2026-11-24T10:00:05Z",
    },
]
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def check_table(lines: list[str], width: int) -> None:
    """Every line fits; each row keeps its whole id and status, and a created time."""
    assert lines[0].split()[:2] == ["id", "status"], lines
    assert "created" in lines[0], lines
    assert "prompt" in lines[0], lines
    for line in lines:
        assert cell_len(line) <= width, f"{cell_len(line)} > {width}: {line!r}"
    for record, line in zip(RECORDS, lines[1:], strict=True):
        fields = line.split()
        assert fields[:2] == [record["id"], record["status"]], line
        assert re.search(r"\b\d\d-\d\d \d\d:\d\d\b", line), f"no created time in {line!r}"
    assert " 12 " in lines[1], "the queue position is shown"
    assert "…" in lines[1] or LONG_PROMPT in lines[1]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_table_fits_every_width(width: int) -> None:
    lines = [line.plain for line in table_lines(list_columns(RECORDS), width)]
    check_table(lines, width)
    if width >= 200:
        assert "fal-ai/flux-pro/kontext/text-to-image" in lines[1], "room for the model"


def in_a_terminal(argv: list[str], env: dict[str, str], columns: int) -> str:
    """Run ``argv`` on a pseudo-terminal ``columns`` wide; its output without colours."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen(argv, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(controller, 65536)
            except OSError:  # EIO: the terminal's other end is closed
                break
            if not data:
                break
            chunks.append(data)
        assert proc.wait(30) == 0, b"".join(chunks).decode(errors="replace")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(controller)
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


@pytest.fixture
def client_env(api: StubApi, tmp_path: Path) -> dict[str, str]:
    api.on("GET", "/v1/generations", (200, {"items": RECORDS, "next_cursor": None}))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(
        GENQUEUE_API_URL=api.url,
        GENQUEUE_API_KEY="gq_test_key",
        GENQUEUE_DATA_DIR=str(tmp_path / "data"),
        TERM="xterm-256color",
    )
    return env


@pytest.mark.parametrize("width", [80, 120])
def test_ls_in_a_terminal(client_env: dict[str, str], width: int) -> None:
    """What `script -qc "stty cols 80; genqueue ls --limit 2"` shows."""
    argv = [sys.executable, "-m", "genqueue", "ls", "--limit", "2"]
    output = in_a_terminal(argv, client_env, width)
    check_table(output.strip("\n").splitlines(), width)


def test_ls_in_a_pipe_prints_plain_columns(client_env: dict[str, str]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "genqueue", "ls"],
        env=client_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    for decoration in ("\x1b", "│", "…"):  # no colours, no box, nothing cut
        assert decoration not in run.stdout
    lines = run.stdout.splitlines()
    rows = [line.split("\t") for line in lines]
    assert rows[0] == ["id", "status", "queue", "created", "model", "prompt"]
    assert [r[:3] for r in rows[1:]] == [
        [RECORDS[0]["id"], "submitting", "12"],
        [RECORDS[1]["id"], "completed", "-"],
    ]
    assert rows[1][5] == LONG_PROMPT, "a pipe gets the whole prompt"
    assert rows[2][5] == "虎の目 — a tiger eye with the word FLUX", "one line per row"
    assert all(len(r) == 6 for r in rows)


def test_keys_list_in_an_80_column_terminal(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENQUEUE_")}
    env.update(GENQUEUE_DATA_DIR=str(tmp_path / "data"), TERM="xterm-256color")
    env.pop("COLUMNS", None)
    gq = [sys.executable, "-m", "genqueue"]
    name = "a-backend-with-a-rather-long-name"
    created = subprocess.run([*gq, "keys", "create", name], env=env, capture_output=True)
    assert created.returncode == 0, created.stderr
    prefix = created.stdout.decode().strip()[:10]
    lines = in_a_terminal([*gq, "keys", "list"], env, 80).strip("\n").splitlines()
    assert lines[0].split() == ["prefix", "name", "tenant", "created"], lines
    assert all(cell_len(line) <= 80 for line in lines), lines
    assert lines[1].split()[0] == prefix, "the prefix `keys revoke` takes is whole"
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", lines[1]), lines[1]
