"""The ASGI app: fal queue routes, public image files and the ``/_sim`` admin API."""

import logging
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models.endpoint_id import app_length
from simulator.admin import admin_app
from simulator.calls import Call
from simulator.core import Simulator
from simulator.faults import Op
from simulator.replies import Reply, detail, fault_reply
from simulator.streaming import hold, read_body, send_reply, stream_status, wait_disconnect
from simulator.transport import abort_connection

logger = logging.getLogger("simulator.http")
JWKS_PATH = "/.well-known/jwks.json"
"""Where the public keys of the webhook signatures are (fal: ``rest.fal.ai``'s)."""


def create_app(sim: Simulator) -> ASGIApp:
    """The simulator's ASGI application."""
    admin = admin_app(sim)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/_sim" or path.startswith("/_sim/"):
            outcome = await _serve_admin(admin, scope, receive, send)
        elif path.startswith("/files/"):
            outcome = await _serve_file(sim, scope, receive, send)
        elif path == JWKS_PATH:
            outcome = await _serve_jwks(sim, scope, send)
        else:
            outcome = await _serve_queue(sim, scope, receive, send)
        logger.info("%s %s %s", scope["method"], path, outcome)

    return app


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _serve_admin(admin: ASGIApp, scope: Scope, receive: Receive, send: Send) -> str:
    status = ["-"]

    async def send_noting_status(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = str(message["status"])
        await send(message)

    await admin(scope, receive, send_noting_status)
    return status[0]


async def _serve_file(sim: Simulator, scope: Scope, receive: Receive, send: Send) -> str:
    parts = scope["path"].strip("/").split("/")
    if scope["method"] not in ("GET", "HEAD"):
        return await send_reply(send, detail(405, "Method Not Allowed"))
    if len(parts) != 3:
        return await send_reply(send, detail(404, "Not Found"))
    rule = sim.file_fault(parts[1])
    if rule is not None:
        reply = fault_reply(rule, "file")
        if reply.delay > 0 and await hold(receive, reply.delay):
            return f"{reply.label} (client gone)"
        if reply.action == "reset":
            if not abort_connection(scope):
                raise ConnectionResetError("simulated connection reset")
            await wait_disconnect(receive, timeout=2.0)
            return reply.label
        if not reply.replay:
            return await send_reply(send, reply)
    found = await anyio.to_thread.run_sync(sim.image, parts[1], parts[2])
    if found is None:
        return await send_reply(send, detail(404, "Not Found"))
    data, content_type = found
    headers = {"cache-control": "public, max-age=604800"}
    body = b"" if scope["method"] == "HEAD" else data
    reply = Reply(200, body, headers, content_type)
    return await send_reply(send, reply, content_length=len(data))


async def _serve_jwks(sim: Simulator, scope: Scope, send: Send) -> str:
    if scope["method"] not in ("GET", "HEAD"):
        return await send_reply(send, detail(405, "Method Not Allowed"))
    keys = sim.jwks()
    if keys is None:
        return await send_reply(send, detail(503, "key server unavailable (jwks_down)"))
    return await send_reply(send, Reply(200, keys, {"cache-control": "max-age=3600"}))


class Route(NamedTuple):
    """Where a queue path leads: an op on an app, or an error code."""

    op: Op | None
    app: str = ""
    target: str | None = None  # request id, or the endpoint for a submit
    stream: bool = False
    error: int = 0


_REQUEST_ROUTES: dict[tuple[str, tuple[str, ...]], tuple[Op, bool]] = {
    ("GET", ()): ("result", False),
    ("GET", ("status",)): ("status", False),
    ("GET", ("status", "stream")): ("status", True),
    ("PUT", ("cancel",)): ("cancel", False),
}


def route(method: str, path: str) -> Route:
    """Resolve ``/{owner}/{app}[/...]``; empty segments (trailing slashes) are ignored."""
    segments = [segment for segment in path.split("/") if segment]
    size = app_length(segments)
    if len(segments) < size:
        return Route(None, error=404)
    app_id, rest = "/".join(segments[:size]), segments[size:]
    if len(rest) >= 2 and rest[0] == "requests":
        found = _REQUEST_ROUTES.get((method, tuple(rest[2:])))
        if found is None:
            return Route(None, app_id, error=405)
        return Route(found[0], app_id, rest[1], found[1])
    if method == "POST":
        return Route("submit", app_id, "/".join(segments))
    return Route(None, app_id, error=405)


async def _serve_queue(sim: Simulator, scope: Scope, receive: Receive, send: Send) -> str:
    found = route(scope["method"], scope["path"])
    if found.op is None:
        message = "Not Found" if found.error == 404 else "Method Not Allowed"
        return await send_reply(send, detail(found.error, message))
    body = b""
    if found.op == "submit":
        received = await read_body(receive)
        if received is None:
            return "client gone"
        body = received
    submit = found.op == "submit"
    call = Call(
        op=found.op,
        app=found.app,
        base_url=_base_url(scope),
        request_id=None if submit else found.target,
        endpoint=found.target if submit else None,
        headers=_headers(scope),
        query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
        body=body,
        stream=found.stream,
        caller=_caller(scope),
    )
    reply = sim.handle(call)
    if reply.delay > 0 and await hold(receive, reply.delay):
        return f"{reply.label} (client gone)"
    if reply.replay:
        reply = sim.handle(call, replay=True)
    if reply.action == "reset":
        if not abort_connection(scope):
            raise ConnectionResetError("simulated connection reset")
        await wait_disconnect(receive, timeout=2.0)
        return reply.label
    if call.stream and reply.label == "stream":
        await stream_status(sim, call, reply, receive, send)
        return "200 (stream)"
    return await send_reply(send, reply)


def _caller(scope: Scope) -> str | None:
    client: Any = scope.get("client")
    return str(client[0]) if client else None


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }


def _base_url(scope: Scope) -> str:
    scheme = scope.get("scheme", "http")
    for name, value in scope.get("headers", []):
        if name.lower() == b"host":
            return f"{scheme}://{value.decode('latin-1')}"
    server: Any = scope.get("server")
    if server:
        host, port = server[0], server[1]
        return f"{scheme}://{host}:{port}" if port else f"{scheme}://{host}"
    return f"{scheme}://localhost"
