"""Client commands: submit (and watch), status, cancel, ls — over the native HTTP API."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from http import HTTPStatus
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner

from genqueue import render
from genqueue.client import ApiClient, ApiRefused, ClientConfig, extension_for
from genqueue.errors import EXIT_ERROR, EXIT_INTERRUPTED, CliError
from models.files import file_objects

DEFAULT_MODEL = "fal-ai/flux-pro/kontext/text-to-image"
MEDIA_WAIT = 30.0
"""Seconds ``submit --wait`` waits for genqueue's copy of the files before downloading."""
POLL_INTERVAL = 0.5
TICK = 0.1

out = render.stdout_console()
err = Console(stderr=True)


def _client() -> ApiClient:
    config = ClientConfig.from_env()
    return ApiClient(base_url=config.url, key=config.key)


def submit(
    prompt: Annotated[str, typer.Argument(help="What to draw.")],
    model: Annotated[str, typer.Option(help="Upstream endpoint id.")] = DEFAULT_MODEL,
    aspect_ratio: Annotated[
        str | None, typer.Option(help="21:9, 16:9, 4:3, 3:2, 1:1, 2:3, 3:4, 9:16 or 9:21.")
    ] = None,
    num_images: Annotated[int | None, typer.Option(help="1 to 4.")] = None,
    output_format: Annotated[str | None, typer.Option(help="jpeg or png.")] = None,
    seed: Annotated[int | None, typer.Option()] = None,
    guidance_scale: Annotated[float | None, typer.Option(help="1 to 20.")] = None,
    safety_tolerance: Annotated[str | None, typer.Option(help='"1" (strict) to "6".')] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Retrying with the same key returns the same generation.")
    ] = None,
    wait: Annotated[
        bool, typer.Option("--wait", "-w", help="Follow it to the end and save the images.")
    ] = False,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Where --wait saves the images.")
    ] = Path("."),
) -> None:
    """Submit a generation. Prints its id; with --wait, follows it and prints the image paths."""
    options: dict[str, Any] = {
        "aspect_ratio": aspect_ratio,
        "num_images": num_images,
        "output_format": output_format,
        "seed": seed,
        "guidance_scale": guidance_scale,
        "safety_tolerance": safety_tolerance,
    }
    input_ = {"prompt": prompt, **{k: v for k, v in options.items() if v is not None}}
    with _client() as client:
        record = client.create(model, input_, idempotency_key=idempotency_key, await_media=wait)
        generation_id = str(record.get("id", ""))
        if not wait:
            err.print(
                f"{render.status_text(record.get('status')).plain}: follow it with "
                f"`genqueue status {generation_id}`",
                highlight=False,
            )
            out.print(generation_id, highlight=False, soft_wrap=True)
            return
        final = _follow(client, record)
        _finish(client, final, out_dir, output_format or "jpeg")


def _follow(client: ApiClient, record: dict[str, Any]) -> dict[str, Any]:
    """Poll until the generation ends, showing status, queue position and elapsed time."""
    generation_id = str(record["id"])
    started = time.monotonic()
    interactive = err.is_terminal
    last: tuple[Any, Any] | None = None
    spinner = Spinner("dots", text=render.live_line(record, 0.0))
    try:
        with Live(
            spinner, console=err, transient=True, refresh_per_second=10, auto_refresh=interactive
        ) as live:
            next_poll = started + POLL_INTERVAL
            while True:
                now = time.monotonic()
                state = (record.get("status"), record.get("queue_position"))
                if interactive:
                    spinner.update(text=render.live_line(record, now - started))
                    live.refresh()
                elif state != last:
                    line = render.live_line(record, now - started)
                    err.print(line, highlight=False, soft_wrap=True)
                last = state
                if record.get("status") in render.TERMINAL:
                    break
                if now < next_poll:  # keep the elapsed time ticking between polls
                    time.sleep(min(TICK, next_poll - now))
                    continue
                record = client.get(generation_id)
                next_poll = time.monotonic() + POLL_INTERVAL
    except KeyboardInterrupt:
        raise CliError(
            f"stopped watching; {generation_id} goes on (`genqueue status {generation_id}`, "
            f"`genqueue cancel {generation_id}`)",
            code=EXIT_INTERRUPTED,
        ) from None
    if interactive:  # the live line was transient: leave the final state on screen
        err.print(render.live_line(record, _elapsed(record)), highlight=False, soft_wrap=True)
    return record


def _stored(client: ApiClient, record: dict[str, Any]) -> dict[str, Any]:
    """The record once genqueue has copied its files (up to ``MEDIA_WAIT`` seconds), so they
    are downloaded from genqueue's copy; upstream's URLs when the copy takes longer."""
    deadline = time.monotonic() + MEDIA_WAIT
    while record.get("media_status") == "pending" and time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        record = client.get(str(record["id"]))
    return record


def _finish(client: ApiClient, record: dict[str, Any], out_dir: Path, fmt: str) -> None:
    generation_id = str(record["id"])
    if record.get("status") != "completed":
        raise CliError(render.ended_line(record), code=EXIT_ERROR)
    record = _stored(client, record)
    for n, found in enumerate(file_objects(record.get("result"))):
        ext = extension_for(found.url, found.content_type, fmt, file_name=found.file_name)
        path = client.download(found.url, out_dir / f"{generation_id}-{n}.{ext}")
        out.print(str(path.resolve()), highlight=False, soft_wrap=True)


def _elapsed(record: dict[str, Any]) -> float:
    start, end = record.get("created_at"), record.get("completed_at")
    if not (start and end):
        return 0.0
    try:
        a = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        b = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return 0.0
    return max(0.0, (b - a).total_seconds())


GenerationId = Annotated[
    str, typer.Argument(help="The generation id, or enough of its beginning to be unique.")
]
"""The argument of status, cancel and delete (``ApiClient.resolve`` takes a unique prefix)."""


def status(
    generation_id: GenerationId,
) -> None:
    """Show a generation and its event history."""
    with _client() as client:
        record = client.get(client.resolve(generation_id))
    out.print(render.record_table(record))
    events = record.get("events")
    if isinstance(events, list) and events:
        out.print(render.events_table([e for e in events if isinstance(e, dict)]))


@contextmanager
def _conflict_says(message: Callable[[ApiRefused], str]) -> Iterator[None]:
    """The API's 409 (the generation is in the wrong state for this) as one line of
    ``message``; any other refusal as it is."""
    try:
        yield
    except ApiRefused as exc:
        if exc.http_status != HTTPStatus.CONFLICT:
            raise
        raise CliError(message(exc)) from None


def cancel(
    generation_id: GenerationId,
) -> None:
    """Cancel a generation (upstream too, if it was sent)."""
    with _client() as client:
        generation_id = client.resolve(generation_id)

        def ended(exc: ApiRefused) -> str:
            state = exc.body.get("status") if isinstance(exc.body, dict) else None
            return (
                f"generation {generation_id} has already ended"
                f"{f' ({state})' if state else ''}: nothing to cancel"
            )

        with _conflict_says(ended):
            answer = client.cancel(generation_id)
    record = answer.get("generation")
    state = (record if isinstance(record, dict) else answer).get("status")
    outcome = answer.get("outcome")
    line = f"{generation_id}: {state or 'cancel requested'}"
    if outcome:
        line += f" ({outcome})"
    if state and state not in render.TERMINAL:
        line += "; upstream is asked to stop, follow it with `genqueue status`"
    out.print(line, highlight=False, soft_wrap=True)


def delete(
    generation_id: GenerationId,
) -> None:
    """Delete an ended generation's result, input and stored files (a tombstone stays)."""
    with _client() as client:
        generation_id = client.resolve(generation_id)
        running = (
            f"generation {generation_id} has not ended: cancel it first "
            f"(`genqueue cancel {generation_id}`), then delete it"
        )
        with _conflict_says(lambda _: running):
            client.delete(generation_id)
    out.print(
        f"{generation_id}: deleted (its result, input and files; its media URLs now answer 404)",
        highlight=False,
        soft_wrap=True,
    )


def ls(
    status_filter: Annotated[
        str | None, typer.Option("--status", "-s", help="Only this status.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many (1 to 200).")] = 50,
) -> None:
    """List recent generations."""
    with _client() as client:
        rows = client.list(status=status_filter, limit=limit)
    if not rows:
        err.print("no generations")
        return
    render.print_columns(out, render.list_columns(rows))


def register(app: typer.Typer) -> None:
    app.command(rich_help_panel="Client")(submit)
    app.command(rich_help_panel="Client")(status)
    app.command(rich_help_panel="Client")(cancel)
    app.command(rich_help_panel="Client")(delete)
    app.command("ls", rich_help_panel="Client")(ls)
