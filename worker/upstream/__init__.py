"""The upstream client: the only code in genqueue that knows fal's URLs, headers and error bodies.

Callers branch on the exception type (``UpstreamTransient`` / ``SubmitAmbiguous`` /
``UpstreamRejected`` / ``UpstreamNotFound``), never on HTTP status codes.
"""

from worker.upstream.client import UpstreamClient
from worker.upstream.errors import (
    SubmitAmbiguous,
    UpstreamError,
    UpstreamNotFound,
    UpstreamRejected,
    UpstreamTransient,
)
from worker.upstream.protocol import app_base, rewrite_url
from worker.upstream.types import (
    QueueState,
    StatusReport,
    SubmitHandle,
    UpstreamCancelOutcome,
    UpstreamResult,
)

__all__ = [
    "QueueState",
    "StatusReport",
    "SubmitAmbiguous",
    "SubmitHandle",
    "UpstreamCancelOutcome",
    "UpstreamClient",
    "UpstreamError",
    "UpstreamNotFound",
    "UpstreamRejected",
    "UpstreamResult",
    "UpstreamTransient",
    "app_base",
    "rewrite_url",
]
