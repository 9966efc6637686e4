"""The URLs genqueue hands out: on its own host (configured, forwarded, or as requested)."""

import re

from fastapi import Request

from models.endpoint_id import app_id

_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


def _first(value: str | None) -> str | None:
    if not value:
        return None
    head = value.split(",", 1)[0].strip()
    return head or None


def public_base(request: Request, configured: str | None) -> str:
    """``GENQUEUE_PUBLIC_URL`` if set; else the proxy's ``X-Forwarded-Proto``/``-Host``; else
    the scheme and ``Host`` of the request itself."""
    if configured:
        return configured
    proto = _first(request.headers.get("x-forwarded-proto"))
    if proto not in ("http", "https"):
        proto = request.url.scheme
    host = _first(request.headers.get("x-forwarded-host")) or request.headers.get("host")
    if not host or not _HOST.match(host):
        host = request.url.netloc
    return f"{proto}://{host}"


def fal_urls(base: str, model: str, request_id: str) -> dict[str, str]:
    """Queue URLs use owner/app only, never the endpoint path (UPSTREAM.md §1)."""
    response_url = f"{base}/{app_id(model)}/requests/{request_id}"
    return {
        "response_url": response_url,
        "status_url": f"{response_url}/status",
        "cancel_url": f"{response_url}/cancel",
    }
