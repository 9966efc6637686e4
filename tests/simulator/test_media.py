"""The simulator's models of other kinds: a real MP4 for the video model, a real WAV for the
speech model, each run as long as the catalogue says (scaled by ``run_time``)."""

import io
import struct
import wave
from typing import Any

import pytest
from PIL import Image

from simulator.media import VIDEO_FPS, VIDEO_SECONDS, VIDEO_SIZE
from simulator.models import builtin_models, run_scale
from tests.simulator.helpers import MODEL, SimClient

VIDEO = "fal-ai/kling-video/v2.1/master/text-to-video"
SPEECH = "fal-ai/kokoro/american-english"


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> dict[bytes, tuple[int, int]]:
    """ISO-BMFF boxes at one level: type → (payload start, payload end)."""
    end = len(data) if end is None else end
    found: dict[bytes, tuple[int, int]] = {}
    while start < end:
        size, kind = struct.unpack(">I4s", data[start : start + 8])
        assert size >= 8, f"bad box size at {start}"
        found[kind] = (start + 8, start + size)
        start += size
    assert start == end, "boxes overrun their parent"
    return found


def _path(data: bytes, *kinds: bytes) -> tuple[int, int]:
    start, end = 0, len(data)
    for kind in kinds:
        start, end = _boxes(data, start, end)[kind]
    return start, end


def _finished(api: SimClient, endpoint: str, prompt: str) -> dict[str, Any]:
    api.sim.configure(run_time=0.1)
    handle = api.submit(prompt, endpoint=endpoint)
    api.advance(0.1 * run_scale(endpoint) + 0.01)
    response = api.result(handle)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_the_video_model_answers_a_playable_mp4(api: SimClient) -> None:
    body = _finished(api, VIDEO, "a paper boat")
    video = body["video"]
    assert (video["content_type"], video["file_name"]) == ("video/mp4", "video.mp4")
    file = api.http.get(video["url"])
    assert file.headers["content-type"] == "video/mp4"
    data = file.content
    assert video["file_size"] == len(data)
    assert list(_boxes(data)) == [b"ftyp", b"moov", b"mdat"]
    stbl = (b"moov", b"trak", b"mdia", b"minf", b"stbl")
    start, _ = _path(data, *stbl, b"stsz")
    _, _, count = struct.unpack(">III", data[start : start + 12])
    sizes = struct.unpack(f">{count}I", data[start + 12 : start + 12 + 4 * count])
    assert count == VIDEO_FPS * VIDEO_SECONDS
    mdat_start, mdat_end = _boxes(data)[b"mdat"]
    assert sum(sizes) == mdat_end - mdat_start
    start, _ = _path(data, *stbl, b"stco")
    (offset,) = struct.unpack(">I", data[start + 8 : start + 12])
    assert offset == mdat_start
    first = Image.open(io.BytesIO(data[offset : offset + sizes[0]]))
    assert (first.format, first.size) == ("JPEG", VIDEO_SIZE)
    start, _ = _path(data, b"moov", b"mvhd")
    timescale, duration = struct.unpack(">II", data[start + 12 : start + 20])
    assert duration / timescale == VIDEO_SECONDS


def test_the_speech_model_answers_a_wav_as_long_as_its_text(api: SimClient) -> None:
    short = _finished(api, SPEECH, "Hello there.")["audio"]
    long = _finished(api, SPEECH, "Hello there. " * 8)["audio"]
    lengths = []
    for audio in (short, long):
        assert audio["content_type"] == "audio/wav"
        data = api.http.get(audio["url"]).content
        assert audio["file_size"] == len(data)
        with wave.open(io.BytesIO(data)) as wav:
            assert (wav.getnchannels(), wav.getsampwidth()) == (1, 2)
            frames = wav.readframes(wav.getnframes())
            lengths.append(wav.getnframes() / wav.getframerate())
        assert max(abs(v) for (v,) in struct.iter_unpack("<h", frames[:4000])) > 1000
    assert lengths[1] > lengths[0] > 0.5


def test_run_times_follow_the_catalogue_at_run_times_scale(api: SimClient) -> None:
    assert builtin_models()[VIDEO].expected_run_seconds == 300
    assert run_scale(VIDEO) == 300 / builtin_models()[MODEL].expected_run_seconds
    assert run_scale(MODEL) == run_scale("fal-ai/flux-pro/kontext/max") == 1
    assert run_scale("acme/not/listed") == 1
    api.sim.configure(run_time=0.1, capacity=None)
    video = api.submit("a slow boat", endpoint=VIDEO)
    image = api.submit("a quick fox")
    api.advance(0.2)
    assert api.status(image).json()["status"] == "COMPLETED"
    assert api.status(video).json()["status"] == "IN_PROGRESS"
    api.advance(0.1 * run_scale(VIDEO))
    assert api.status(video).json()["status"] == "COMPLETED"


@pytest.mark.parametrize("name", ["0.jpeg", "audio.wav", "other.mp4"])
def test_a_video_job_serves_no_other_file(api: SimClient, name: str) -> None:
    body = _finished(api, VIDEO, "only a video")
    base = body["video"]["url"].rsplit("/", 1)[0]
    assert api.http.get(f"{base}/{name}").status_code == 404
