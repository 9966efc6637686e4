"""``GET|HEAD /media/{generation_id}/{position}/{signature}[.ext]``: a stored output file.

No ``Authorization`` header: the URL is the capability (models/media_urls.py). A bad signature, an
unknown or deleted file answer 404 alike. Answers carry the stored ``Content-Type`` (sniffed
from the bytes), ``Content-Length``, an ``ETag`` (the SHA-256), ``Cache-Control`` and
``Accept-Ranges``; a single ``Range: bytes=…`` gets 206 (416 when it starts past the end;
several ranges get the whole file).
"""

import re
import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import StreamingResponse
from sqlalchemy import select

from api.errors import ApiError
from api.openapi import errors
from api.state import SessionDep, StateDep
from models.media import MediaStatus, object_key
from models.media_store import StoredObjectMissing
from models.tables import MediaFile

router = APIRouter(tags=["media"])
CACHE_CONTROL = "private, max-age=86400"
"""A day in the holder's own cache; never in a shared one (the URL is a capability)."""
MAX_POSITION = 2**31 - 1
PATH = "/media/{generation_id}/{position}/{name}"
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | bool | None:
    """``(start, end exclusive)`` of a single satisfiable range; None: serve it all;
    False: unsatisfiable (416)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or not any(match.groups()):
        return None  # not one byte range we understand: the whole file (RFC 9110 §14.2)
    first, last = match.groups()
    if not first:  # the last N bytes
        length = int(last)
        return (max(size - length, 0), size) if length > 0 and size > 0 else False
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    if start >= size or (last and int(last) < start):
        return False
    return start, end


@router.head(PATH, include_in_schema=False)
@router.get(
    PATH,
    summary="A stored output file (capability URL: no Authorization header)",
    response_class=Response,
    responses={
        200: {"description": "The file", "content": {"application/octet-stream": {}}},
        206: {"description": "A byte range", "content": {"application/octet-stream": {}}},
        304: {"description": "Not modified (If-None-Match)"},
        416: {"description": "The range starts past the end"},
        **errors(404, 422, described={404: "No such file (a bad signature, or deleted)"}),
    },
)
def media_file(
    request: Request,
    state: StateDep,
    session: SessionDep,
    generation_id: uuid.UUID,
    position: Annotated[int, Path(ge=0, le=MAX_POSITION)],
    name: str,
) -> Response:
    row = _verified(state, session, generation_id, position, name)
    size = row.size or 0
    headers = {
        "ETag": f'"{row.sha256}"',
        "Cache-Control": CACHE_CONTROL,
        "Accept-Ranges": "bytes",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if _matches(request.headers.get("if-none-match"), row.sha256 or ""):
        return Response(status_code=304, headers=headers)
    wanted = parse_range(request.headers.get("range"), size)
    if wanted is False:
        return Response(status_code=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    start, end, status = 0, size, 200
    if isinstance(wanted, tuple):
        start, end, status = wanted[0], wanted[1], 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    media_type = row.content_type or "application/octet-stream"
    if request.method == "HEAD" or end == start:
        return Response(status_code=status, headers=headers, media_type=media_type)
    try:
        chunks = state.media_store.read(object_key(row.generation_id, row.position), start, end)
    except StoredObjectMissing:
        raise ApiError(404, "Not found") from None
    return StreamingResponse(chunks, status, headers, media_type=media_type)


def _verified(
    state: StateDep, session: SessionDep, gen_id: uuid.UUID, pos: int, name: str
) -> MediaFile:
    if not state.media_signer.verify(gen_id, pos, name.split(".", 1)[0]):
        raise ApiError(404, "Not found")
    row = session.scalar(
        select(MediaFile).where(
            MediaFile.generation_id == gen_id,
            MediaFile.position == pos,
            MediaFile.status == MediaStatus.STORED.value,
        )
    )
    if row is None:
        raise ApiError(404, "Not found")
    return row


def _matches(header: str | None, sha256: str) -> bool:
    if not header or not sha256:
        return False
    tags = {t.strip().removeprefix("W/") for t in header.split(",")}
    return "*" in tags or f'"{sha256}"' in tags
