"""Rich renderings of API records: the record, its event history, lists, the live wait line."""

import json
import os
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from genqueue.columns import Column, plain_lines, table_lines
from models.files import file_objects

STATUS_STYLE = {
    "pending": "yellow",
    "submitting": "yellow",
    "queued": "cyan",
    "running": "blue",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}
TERMINAL = {"completed", "failed", "cancelled"}
FULL_TIME = "%Y-%m-%d %H:%M:%S"
SHORT_TIME = "%m-%d %H:%M"
"""A time without the year and the seconds, for narrow terminals."""
MIN_PROMPT = 10
"""Cells `genqueue ls` keeps for the prompt before it hides other columns."""
MAX_MODEL_CELLS = 40
RECORD_FIELDS = (
    ("id", "id"),
    ("model", "model"),
    ("status", "status"),
    ("queue_position", "queue position"),
    ("upstream_request_id", "upstream request"),
    ("request_id", "upstream request"),
    ("created_at", "created"),
    ("submitted_at", "submitted"),
    ("started_at", "started"),
    ("completed_at", "completed"),
    ("cancel_requested_at", "cancel requested"),
    ("deadline_at", "deadline"),
)


def stdout_console() -> Console:
    """Piped output gets wide tables rather than 80 squeezed columns."""
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(width=160 if wide else None)


def status_text(status: str | None) -> Text:
    value = status or "?"
    return Text(value, style=STATUS_STYLE.get(value, ""))


def short_time(value: Any, fmt: str = FULL_TIME) -> str:
    """An API timestamp in local time (``fmt``)."""
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return str(value)
    return moment.astimezone().strftime(fmt)


def prompt_of(record: dict[str, Any]) -> str:
    input_ = record.get("input")
    prompt = input_.get("prompt") if isinstance(input_, dict) else None
    return str(prompt) if prompt else ""


def error_line(error: Any, *, status: str | None = None) -> str:
    """``kind: message (upstream HTTP n)``; the kind is left out when it only repeats
    ``status`` (a cancelled job's error is of kind ``cancelled``)."""
    if not error:
        return ""
    if isinstance(error, dict):
        kind = error.get("type") or error.get("error_type") or "error"
        message = error.get("message") or error.get("detail") or ""
        http_status = error.get("http_status")
        suffix = f" (upstream HTTP {http_status})" if http_status else ""
        if kind == status and message:
            return f"{message}{suffix}".strip()
        return f"{kind}: {message}{suffix}".strip()
    return str(error)


def ended_line(record: dict[str, Any]) -> str:
    """How a generation that did not complete ended, as one line."""
    status = str(record.get("status") or "?")
    head = f"generation {record.get('id', '?')} {status}"
    detail = error_line(record.get("error"), status=status)
    if detail:
        return f"{head}: {detail}"
    return head if status == "cancelled" else f"{head}: no error recorded"


def file_urls(record: dict[str, Any]) -> list[str]:
    """The URLs of every file in the result, at any depth (images, a video, audio, …)."""
    return [found.url for found in file_objects(record.get("result"))]


def record_table(record: dict[str, Any]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    shown: set[str] = set()
    for key, label in RECORD_FIELDS:
        value = record.get(key)
        if value is None or value == "" or label in shown:
            continue
        shown.add(label)
        if key == "status":
            table.add_row(label, status_text(str(value)))
        elif key.endswith("_at"):
            table.add_row(label, short_time(value))
        else:
            table.add_row(label, str(value))
    if prompt_of(record):
        table.add_row("prompt", prompt_of(record))
    if record.get("error"):
        line = error_line(record["error"], status=str(record.get("status")))
        table.add_row("error", Text(line, style="red"))
    for n, url in enumerate(file_urls(record), 1):
        table.add_row(f"file {n}", url if len(url) < 300 else url[:300] + "…")
    return table


def events_table(events: list[dict[str, Any]]) -> Table:
    table = Table(title="events", title_justify="left", expand=False)
    table.add_column("at", no_wrap=True)
    table.add_column("event")
    table.add_column("status")
    table.add_column("queue", justify="right")
    table.add_column("detail", overflow="fold")
    for event in events:
        position = event.get("queue_position")
        detail = event.get("detail")
        table.add_row(
            short_time(event.get("at") or event.get("created_at")),
            str(event.get("kind") or event.get("event") or ""),
            status_text(event["status"]) if event.get("status") else Text(""),
            "" if position is None else str(position),
            _compact(detail),
        )
    return table


def list_columns(records: list[dict[str, Any]]) -> list[Column]:
    """`genqueue ls`: the id and status whole, the prompt cut to what is left."""
    positions = [r.get("queue_position") for r in records]
    models = [str(r.get("model") or "") for r in records]
    return [
        Column("id", [Text(str(r.get("id", ""))) for r in records]),
        Column("status", [status_text(r.get("status")) for r in records]),
        Column("queue", [Text("" if p is None else str(p)) for p in positions], align="right"),
        Column(
            "created",
            [Text(short_time(r.get("created_at"))) for r in records],
            short=[Text(short_time(r.get("created_at"), SHORT_TIME)) for r in records],
        ),
        Column(
            "model",
            [_cut(m, MAX_MODEL_CELLS) for m in models],
            optional=True,
            plain=models,
        ),
        Column("prompt", [Text(" ".join(prompt_of(r).split())) for r in records], flex=MIN_PROMPT),
    ]


def _cut(value: str, cells: int) -> Text:
    text = Text(value)
    text.truncate(cells, overflow="ellipsis")
    return text


def live_line(record: dict[str, Any], elapsed: float) -> Text:
    status = str(record.get("status") or "?")
    line = Text.assemble(status_text(status))
    position = record.get("queue_position")
    if status == "queued" and position is not None:
        line.append(f"  position {position}", style="cyan")
    line.append(f"  {elapsed:5.1f}s", style="dim")
    line.append(f"  {record.get('id', '')}", style="dim")
    return line


def _compact(detail: Any) -> str:
    if not detail:
        return ""
    if isinstance(detail, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in detail.items() if v is not None)
    return str(detail)


def _value(value: Any) -> str:
    if isinstance(value, dict | list):
        text = json.dumps(value, separators=(",", ":"))
        return text if len(text) < 120 else text[:117] + "..."
    return str(value)


def print_columns(console: Console, columns: list[Column]) -> None:
    """A table fitted to the terminal; in a pipe, tab-separated plain columns."""
    if not console.is_terminal:
        console.file.write("\n".join(plain_lines(columns)) + "\n")
        return
    for line in table_lines(columns, console.width):
        console.print(line, soft_wrap=True, highlight=False)
