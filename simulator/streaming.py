"""Low-level ASGI helpers: reading bodies, holding calls, sending replies, the SSE stream."""

import asyncio
import json
from typing import Any

from starlette.types import Receive, Send

from simulator.calls import Call
from simulator.core import Simulator
from simulator.replies import Reply


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def wait_disconnect(receive: Receive, *, timeout: float | None = None) -> bool:
    """Wait until the client disconnects; False on timeout."""

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    try:
        await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        return False
    return True


async def hold(receive: Receive, seconds: float) -> bool:
    """Hold the call ``seconds``; True when the client disconnected meanwhile."""
    return await wait_disconnect(receive, timeout=seconds)


async def send_reply(send: Send, reply: Reply, *, content_length: int | None = None) -> str:
    """Send ``reply``; returns its log label."""
    body = reply.render()
    media = reply.media_type
    if media.startswith("text/") and "charset" not in media:
        media += "; charset=utf-8"
    headers = [(b"content-type", media.encode())]
    headers.append((b"content-length", str(content_length or len(body)).encode()))
    headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in reply.headers.items()
    )
    await send({"type": "http.response.start", "status": reply.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return reply.label


async def stream_status(
    sim: Simulator, call: Call, reply: Reply, receive: Receive, send: Send
) -> None:
    """``data: {status}`` events as the status changes, ``: ping`` keepalives, end at COMPLETED."""
    headers = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]
    headers.extend((k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items())
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    base = sim.config.public_url or call.base_url
    request_id = call.request_id or ""
    gone = asyncio.ensure_future(wait_disconnect(receive))
    loop = asyncio.get_running_loop()
    last: dict[str, Any] | None = None
    next_ping = loop.time()
    try:
        while True:
            config = sim.config
            status = sim.status_snapshot(request_id, call.app, base, logs=call.wants_logs)
            if status is None:
                break
            chunk = b""
            if status != last:
                chunk += b"data: " + json.dumps(status, separators=(",", ":")).encode() + b"\n\n"
            if loop.time() >= next_ping:
                chunk += b": ping\n\n"
                next_ping = loop.time() + config.stream_ping_interval
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            last = status
            if status["status"] == "COMPLETED":
                break
            done, _ = await asyncio.wait({gone}, timeout=config.stream_interval)
            if done:
                return
        await send({"type": "http.response.body", "body": b""})
    finally:
        gone.cancel()
