"""fal queue URL rules (UPSTREAM.md §1): where submit goes, and where the returned URLs really are.

Submit goes to ``{base}/{endpoint_id}``. Status, result and cancel live under the *app*
(``owner/app``), not the full endpoint path: ``{base}/fal-ai/flux-pro/requests/{id}/status``.
Upstream returns those URLs in the submit answer, but relays pass fal's body through verbatim,
so they name ``queue.fal.run``, which the relay's token cannot call: every URL is therefore
re-homed onto the configured base before use.
"""

import re
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from models.endpoint_id import app_length

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]*$")


def _segments(endpoint_id: str) -> list[str]:
    parts = endpoint_id.strip("/").split("/")
    if not all(_SEGMENT.match(part) for part in parts):
        raise ValueError(f"invalid endpoint id {endpoint_id!r}")
    return parts


def app_base(endpoint_id: str) -> str:
    """The ``[namespace/]owner/app`` part of an endpoint id, under which its requests live.

    >>> app_base("fal-ai/flux-pro/kontext/text-to-image")
    'fal-ai/flux-pro'
    >>> app_base("workflows/someone/my-flow/run")
    'workflows/someone/my-flow'
    """
    parts = _segments(endpoint_id)
    size = app_length(parts)
    if len(parts) < size:
        raise ValueError(
            f"invalid endpoint id {endpoint_id!r}: expected [namespace/]owner/app[/path]"
        )
    return "/".join(parts[:size])


def normalize_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash; raises ValueError unless it is an http(s) URL."""
    parts = urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(
            f"upstream base URL must be http(s)://host[:port][/prefix], got {base_url!r}"
        )
    if parts.query or parts.fragment:
        raise ValueError("upstream base URL must not carry a query or fragment")
    return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


def submit_url(base_url: str, endpoint_id: str, *, webhook_url: str | None = None) -> str:
    """``{base}/{endpoint_id}``, with ``?fal_webhook=<urlencoded>`` when a webhook is wanted."""
    app_base(endpoint_id)  # validates the shape
    url = f"{base_url.rstrip('/')}/{endpoint_id.strip('/')}"
    if webhook_url:
        url += "?" + urlencode({"fal_webhook": webhook_url})
    return url


def request_url(base_url: str, endpoint_id: str, request_id: str, suffix: str = "") -> str:
    """The documented URL of a request, for when upstream's answer left one out (fal says to
    prefer the URLs it returns; this is the fallback). ``suffix`` is ``""``, ``"/status"`` or
    ``"/cancel"``."""
    rid = quote(request_id, safe="")
    return f"{base_url.rstrip('/')}/{app_base(endpoint_id)}/requests/{rid}{suffix}"


def rewrite_url(url: str, base_url: str) -> str:
    """``url`` with its scheme and host(:port) replaced by ``base_url``'s, and ``base_url``'s path
    prefix put in front of its path (unless the path already starts with it). Query is kept.

    >>> rewrite_url("https://queue.fal.run/fal-ai/flux-pro/requests/r/status", "http://relay:8080/fal/")
    'http://relay:8080/fal/fal-ai/flux-pro/requests/r/status'

    Idempotent: rewriting an already rewritten URL changes nothing.
    """
    base = urlsplit(base_url.strip())
    if base.scheme not in ("http", "https") or not base.netloc:
        raise ValueError(f"base URL must be http(s)://host[:port][/prefix], got {base_url!r}")
    target = urlsplit(url.strip())
    prefix = base.path.rstrip("/")
    path = target.path or "/"
    if not path.startswith("/"):
        path = "/" + path
    if prefix and not (path == prefix or path.startswith(prefix + "/")):
        path = prefix + path
    return urlunsplit((base.scheme, base.netloc, path, target.query, ""))
