"""fal endpoint ids, ``[namespace/]owner/app[/path]`` (UPSTREAM.md §1): which part names the app.

A submit goes to the whole endpoint id; status, result and cancel live under the app only
(``fal-ai/flux-pro/requests/{id}/status`` for ``fal-ai/flux-pro/kontext/text-to-image``).

The API, the worker and the simulator all apply these rules, so this module imports nothing,
not even the rest of ``models`` (the simulator may import this one module of genqueue's).
"""

from collections.abc import Sequence

APP_NAMESPACES = frozenset({"workflows", "comfy"})
"""Leading segments that are a namespace, not an owner: ``workflows/owner/app/...`` (fal-client's
``APP_NAMESPACES``)."""


def app_length(segments: Sequence[str]) -> int:
    """How many leading segments of an endpoint id name its app: three under a namespace,
    otherwise two (owner and app)."""
    return 3 if segments and segments[0] in APP_NAMESPACES else 2


def app_id(endpoint_id: str) -> str:
    """``[namespace/]owner/app``: the part of an endpoint id its queue URLs keep.

    >>> app_id("fal-ai/flux-pro/kontext/text-to-image")
    'fal-ai/flux-pro'
    >>> app_id("workflows/someone/my-flow/run")
    'workflows/someone/my-flow'
    """
    parts = endpoint_id.strip("/").split("/")
    return "/".join(parts[: app_length(parts)])
