"""The `genqueue` command: run the system (`up`, or each process alone) and use it."""

from pathlib import Path
from typing import Annotated

import typer
from typer._click import exceptions as click  # typer's own click (typer ≥ 0.24 vendors it)

from genqueue import generations, services
from genqueue.catalogue import models_app
from genqueue.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_INVALID, CliError, print_error
from genqueue.keys import keys_app
from genqueue.tenants import tenants_app
from genqueue.usage import usage

app = typer.Typer(
    name="genqueue",
    help="A durable job system in front of fal.ai-style generation queues.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.command(rich_help_panel="Server")
def up(
    host: Annotated[
        str | None, typer.Option(help="API interface (default GENQUEUE_API_HOST, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="API port (default GENQUEUE_API_PORT, 8000).")
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Database, Redis, keys and logs (default GENQUEUE_DATA_DIR)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Children log here, not to files.")
    ] = False,
) -> None:
    """Run everything on this machine: Redis, API, worker, beat, Flower, the simulator.

    The simulator runs when no upstream is configured. Ctrl-C stops it all."""
    from genqueue import up as up_module

    up_module.run(host=host, port=port, data_dir=data_dir, verbose=verbose)


services.register(app)
app.add_typer(keys_app, name="keys", rich_help_panel="Server")
app.add_typer(tenants_app, name="tenants", rich_help_panel="Server")
app.add_typer(models_app, name="models", rich_help_panel="Server")
generations.register(app)
app.command(rich_help_panel="Client")(usage)


def main() -> int:
    try:
        code = app(prog_name="genqueue", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        exc.show()  # `genqueue` or `genqueue keys` alone: the help, as asked
        return exc.exit_code
    except click.UsageError as exc:
        print_error(usage_line(exc))
        return EXIT_INVALID
    except click.ClickException as exc:
        print_error(exc.format_message())
        return exc.exit_code
    except typer.Abort:
        print_error("aborted")
        return EXIT_ERROR
    except CliError as exc:
        print_error(exc.message)
        return exc.code
    except KeyboardInterrupt:
        print_error("interrupted")
        return EXIT_INTERRUPTED
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code if isinstance(code, int) else 0


def usage_line(exc: click.UsageError) -> str:
    """A refused command line as one line: what is wrong and where the help is."""
    command = exc.ctx.command_path if exc.ctx is not None else "genqueue"
    return f"{exc.format_message().rstrip('.')} (see `{command} --help`)"
