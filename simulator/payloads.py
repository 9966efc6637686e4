"""fal queue response bodies built from a job (UPSTREAM.md §4–§6, §11, §13)."""

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from simulator.jobs import Job, JobState, Outcome
from simulator.media import render_video, render_wav
from simulator.models import model_for

Wall = Callable[[float], float]


def request_urls(base: str, job: Job) -> dict[str, str]:
    """The three queue URLs: owner/app only, never the endpoint path."""
    root = f"{base}/{job.app}/requests/{job.request_id}"
    return {"response_url": root, "status_url": f"{root}/status", "cancel_url": f"{root}/cancel"}


def submit_body(job: Job, base: str, position: int) -> dict[str, Any]:
    body: dict[str, Any] = {
        "status": JobState.IN_QUEUE.value,
        "request_id": job.request_id,
        **request_urls(base, job),
        "logs": None,
        "metrics": {},
        "queue_position": position,
    }
    if job.webhook_url is not None:
        body["gateway_request_id"] = job.request_id
    return body


def status_body(
    job: Job, base: str, position: int | None, *, logs: bool, wall: Wall
) -> dict[str, Any]:
    """Status JSON; ``position`` is used while the job waits."""
    state = job.state
    body: dict[str, Any] = {"status": state.value, "request_id": job.request_id}
    body.update(request_urls(base, job))
    if state is JobState.IN_QUEUE:
        body["queue_position"] = position if position is not None else 0
    body["logs"] = log_entries(job, wall) if logs else None
    metrics: dict[str, Any] = {}
    if state is JobState.COMPLETED:
        if job.outcome is Outcome.OK and job.inference_time is not None:
            metrics["inference_time"] = round(job.inference_time, 6)
        if job.error is not None:
            body["error"] = job.error.error
            body["error_type"] = job.error.error_type
    body["metrics"] = metrics
    return body


def job_info(job: Job, position: int | None, wall: Wall) -> dict[str, Any]:
    """A job's lifecycle and per-op call counts (``/_sim/requests/{id}``)."""

    def at(t: float | None) -> float | None:
        return None if t is None else wall(t)

    return {
        "request_id": job.request_id,
        "endpoint": job.endpoint,
        "state": job.state.value,
        "outcome": None if job.outcome is None else job.outcome.value,
        "error_type": None if job.error is None else job.error.error_type,
        "queue_position": position,
        "submitted_at": at(job.submitted),
        "started_at": at(job.started),
        "completed_at": at(job.ended),
        "calls": dict(job.calls),
        "call_log": [{"op": op, "caller": caller, "at": wall(t)} for op, caller, t in job.call_log],
        "cancel_requested": job.cancel_requested,
        "webhook_url": job.webhook_url,
    }


def log_entries(job: Job, wall: Wall) -> list[dict[str, Any]]:
    """The job's log so far (all entries on every call)."""
    entries: list[dict[str, Any]] = []
    params = job.params
    if job.started is not None:
        width, height = params.size
        entries.append(
            _log(
                wall(job.started),
                f"Generating {params.num_images} image(s) at {width}x{height}, seed {job.seed}",
            )
        )
    if job.ended is not None:
        if job.error is None:
            run = job.inference_time or 0.0
            entries.append(_log(wall(job.ended), f"Finished in {run:.2f}s"))
        else:
            entries.append(_log(wall(job.ended), job.error.error, level="ERROR"))
    return entries


def _log(at: float, message: str, *, level: str = "INFO") -> dict[str, Any]:
    stamp = datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return {"message": message, "level": level, "source": "USER", "timestamp": stamp, "labels": {}}


def image_name(job: Job, index: int) -> str:
    return f"{index}.{job.params.output_format}"


VIDEO_NAME = "video.mp4"
AUDIO_NAME = "audio.wav"


def result_body(job: Job, base: str) -> dict[str, Any]:
    """A successful job's output, shaped by its model's kind: ``images`` (``FluxProV11Output``),
    a ``video`` or an ``audio`` file object."""
    params = job.params
    kind = model_for(job.endpoint).kind
    if kind in ("video", "audio"):
        name = VIDEO_NAME if kind == "video" else AUDIO_NAME
        data = media_bytes(job, name)
        assert data is not None
        file = {
            "url": f"{base}/files/{job.request_id}/{name}",
            "content_type": data[1],
            "file_name": name,
            "file_size": len(data[0]),
        }
        return {kind: file, "seed": job.seed, "prompt": params.prompt}
    width, height = params.size
    images = [
        {
            "url": f"{base}/files/{job.request_id}/{image_name(job, index)}",
            "width": width,
            "height": height,
            "content_type": f"image/{params.output_format}",
        }
        for index in range(params.num_images)
    ]
    return {
        "images": images,
        "timings": {"inference": round(job.inference_time or 0.0, 6)},
        "seed": job.seed,
        "has_nsfw_concepts": [params.nsfw] * params.num_images,
        "prompt": params.prompt,
    }


@lru_cache(maxsize=16)
def _media(name: str, prompt: str, seed: int) -> tuple[bytes, str]:
    if name == VIDEO_NAME:
        return render_video(prompt, seed), "video/mp4"
    return render_wav(prompt, seed), "audio/wav"


def media_bytes(job: Job, name: str) -> tuple[bytes, str] | None:
    """The bytes and content type of a video or audio job's file (made once, kept a while);
    None when the job makes no file of that name."""
    kind = model_for(job.endpoint).kind
    if (kind, name) not in (("video", VIDEO_NAME), ("audio", AUDIO_NAME)):
        return None
    return _media(name, job.params.prompt, job.seed)


def webhook_payload(job: Job, base: str) -> dict[str, Any]:
    """The body fal POSTs to ``fal_webhook`` when the job completes (UPSTREAM.md §11)."""
    payload: dict[str, Any] = {"request_id": job.request_id, "gateway_request_id": job.request_id}
    if job.error is None:
        payload.update(status="OK", payload=result_body(job, base))
    else:
        payload.update(
            status="ERROR",
            error=f"Invalid status code: {job.error.status_code}",
            payload=job.error.body,
        )
    return payload
