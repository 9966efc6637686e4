"""``GET /v1/generations/{id}/stream``: the native status as server-sent events.

The fal surface's status streams and these share one watcher per API process
(:mod:`api.fal.watcher`): one database check per interval for every open stream, and the same
per-key limit. The console's generation page follows a job with it (through ``fetch``, which,
unlike ``EventSource``, can send the ``Authorization`` header).
"""

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.errors import not_found
from api.fal.status import WatchedStream, status_events
from api.fal.watcher import Watch, native_status_body, native_stream_ends
from api.lookups import local_queue_position, owned_generation
from api.openapi import SECURITY, errors
from api.state import CallerDep, SessionDep, StateDep

router = APIRouter(prefix="/v1", tags=["generations"])


@router.get(
    "/generations/{generation_id}/stream",
    summary="A generation's status as server-sent events, until it has ended",
    description="`data: {id, status, queue_position, local_queue_position, "
    "cancel_requested_at, completed_at, media_status}` whenever one of them changes, "
    "`: ping` keepalives; the stream ends once the generation has ended and no file copy is "
    "pending, or after `GENQUEUE_STREAM_MAX_SECONDS` (reconnect). Shares the fal status "
    "streams' per-key limit (429).",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
            "description": "`data: <status JSON>` events, `: ping` keepalives",
        },
        **errors(401, 404, 429, 503),
    },
    openapi_extra={"security": SECURITY},
)
def generation_stream(
    caller: CallerDep, session: SessionDep, state: StateDep, generation_id: str
) -> StreamingResponse:
    gen = owned_generation(session, caller.tenant_id, generation_id)
    if gen is None:
        raise not_found()
    fair = state.settings.max_in_flight > 0
    position = local_queue_position(session, gen, fair=fair)
    first = native_status_body(gen, local_queue_position=position)
    session.close()  # the stream holds no connection: the watcher checks for every stream
    watch = state.streams.open(Watch(caller.key_id, gen.id, "", False, first, native=True))
    settings = state.settings
    events = status_events(
        state.streams,
        watch,
        ping_interval=settings.stream_ping_interval,
        max_seconds=settings.stream_max_seconds,
        is_last=native_stream_ends,
    )
    return WatchedStream(
        events,
        on_end=lambda: state.streams.close(watch),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
