"""How the CLI fails: one line on stderr and a non-zero exit code that says what kind."""

import sys

EXIT_ERROR = 1
"""Something failed, or the generation ended failed/cancelled."""
EXIT_INVALID = 2
"""The input was refused (422), or the command line was wrong."""
EXIT_UNREACHABLE = 3
"""The API could not be reached (refused, timed out)."""
EXIT_AUTH = 4
"""The API refused the key (401/403)."""
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A failure the user can act on: printed as one line, never as a traceback."""

    def __init__(self, message: str, *, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def print_error(message: str) -> None:
    """One line, whatever the terminal width (rich would wrap it). Context that must keep its
    lines (a log excerpt) follows after a newline in ``message``."""
    first, _, context = message.partition("\n")
    line = " ".join(first.split())
    prefix = "\x1b[31merror:\x1b[0m" if sys.stderr.isatty() else "error:"
    sys.stderr.write(f"{prefix} {line}\n" + (context.rstrip() + "\n" if context else ""))
    sys.stderr.flush()
