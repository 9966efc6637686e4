"""Logging for every process: plain lines or one JSON object per line (``GENQUEUE_LOG_JSON``)."""

import json
import logging
import sys
from datetime import UTC, datetime

from models.settings import Settings

_CONFIGURED = "_genqueue_configured"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("generation_id", "request_id", "event"):
            value = getattr(record, key, None)
            if value is not None:
                payload[key] = str(value)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload)


def configure_logging(settings: Settings) -> None:
    root = logging.getLogger()
    if getattr(root, _CONFIGURED, False):
        return
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    # httpx logs every request line at INFO; keep it for debugging only.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    setattr(root, _CONFIGURED, True)
