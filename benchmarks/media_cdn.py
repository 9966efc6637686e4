"""A stand-in CDN for the media benchmark: ``GET /files/{anything}/{n}.jpg`` answers one of
four fixed files (``SIZE`` bytes each, a JPEG signature then pseudo-random bytes), streamed in
64 KiB chunks with a ``Content-Length``. Run as ``uvicorn benchmarks.media_cdn:app``."""

import random
from typing import Any

SIZE = 256 * 1024
CHUNK = 64 * 1024
FILES = [b"\xff\xd8\xff\xe0" + random.Random(n).randbytes(SIZE - 4) for n in range(4)]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    name = scope["path"].rsplit("/", 1)[-1]
    index = int(name.split(".")[0]) % 4 if name.split(".")[0].isdigit() else None
    if index is None:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    data = FILES[index]
    headers = [(b"content-type", b"image/jpeg"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    for start in range(0, len(data), CHUNK):
        more = start + CHUNK < len(data)
        await send(
            {"type": "http.response.body", "body": data[start : start + CHUNK], "more_body": more}
        )
