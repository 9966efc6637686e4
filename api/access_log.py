"""The access log never shows a ``fal_webhook`` value: a webhook URL may carry a token.

uvicorn logs each request line, query string included, on the ``uvicorn.access`` logger
(``args`` = client, method, path with query, HTTP version, status). :class:`RedactQuery` rewrites
the path before any handler sees it; :func:`install_access_log_redaction` puts it on that logger.
"""

import logging
from urllib.parse import unquote_plus

ACCESS_LOGGER = "uvicorn.access"
SECRET_PARAMS = frozenset({"fal_webhook"})
REDACTED = "[redacted]"


def redact_query(path: str) -> str:
    """``path?fal_webhook=…&x=1`` → ``path?fal_webhook=[redacted]&x=1``. Names are compared
    decoded (``fal%5Fwebhook`` is the same parameter to the server)."""
    head, sep, query = path.partition("?")
    if not sep:
        return path
    parts = []
    for part in query.split("&"):
        name, eq, _ = part.partition("=")
        if eq and unquote_plus(name) in SECRET_PARAMS:
            part = f"{name}={REDACTED}"
        parts.append(part)
    return f"{head}?{'&'.join(parts)}"


class RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_query(args[2]), *args[3:])
        return True


def install_access_log_redaction() -> None:
    """Idempotent: one :class:`RedactQuery` on the access logger, however many apps are built."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
