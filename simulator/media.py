"""Real video and audio files for simulated results, made in pure Python.

Video: an MP4 (ISO base media file) holding Motion JPEG frames (sample entry ``jpeg``), each a
picture from :mod:`simulator.images` with the frame number drawn on, at a small size so a
clip is a few tens of kB: a file players and ``ffprobe`` open, with a real ``moov``/``mdat``
layout and a duration, without an encoder. Audio: a WAV (``wave`` module), a tone whose pitch
follows the seed, as long as the text would take to say.
"""

import io
import math
import struct
import wave

from simulator.images import render_image

VIDEO_SIZE = (160, 90)
VIDEO_FPS = 4
VIDEO_SECONDS = 2
"""A short clip whatever ``duration`` asks: the point is a real, small file."""
AUDIO_RATE = 16_000
SECONDS_PER_CHARACTER = 0.06
MAX_AUDIO_SECONDS = 10.0


def _box(kind: bytes, *payload: bytes) -> bytes:
    body = b"".join(payload)
    return struct.pack(">I", 8 + len(body)) + kind + body


def _full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *payload)


UNITY_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def mjpeg_mp4(frames: list[bytes], width: int, height: int, fps: int) -> bytes:
    """An MP4 of JPEG ``frames`` (one video track, ``fps`` frames a second)."""
    timescale = fps * 100
    delta = timescale // fps
    duration = delta * len(frames)
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isom", b"iso2", b"mp41")
    mdat_header = struct.pack(">I", 8 + sum(map(len, frames))) + b"mdat"
    mvhd = _full_box(
        b"mvhd", 0, 0,
        struct.pack(">IIII", 0, 0, timescale, duration),
        struct.pack(">IH", 0x10000, 0x100), b"\0" * 10, UNITY_MATRIX, b"\0" * 24,
        struct.pack(">I", 2),
    )  # fmt: skip
    tkhd = _full_box(
        b"tkhd", 0, 3,
        struct.pack(">IIIII", 0, 0, 1, 0, duration), b"\0" * 8,
        struct.pack(">hhhH", 0, 0, 0, 0), UNITY_MATRIX,
        struct.pack(">II", width << 16, height << 16),
    )  # fmt: skip
    mdhd = _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, timescale, duration, 0x55C4, 0))
    hdlr = _full_box(b"hdlr", 0, 0, b"\0" * 4, b"vide", b"\0" * 12, b"genqueue simulator\0")
    vmhd = _full_box(b"vmhd", 0, 1, b"\0" * 8)
    dinf = _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1)))
    sample_entry = _box(
        b"jpeg",
        b"\0" * 6, struct.pack(">H", 1), b"\0" * 16,
        struct.pack(">HH", width, height), struct.pack(">II", 0x480000, 0x480000),
        b"\0" * 4, struct.pack(">H", 1), bytes([10]) + b"Photo-JPEG".ljust(31, b"\0"),
        struct.pack(">Hh", 24, -1),
    )  # fmt: skip
    stsd = _full_box(b"stsd", 0, 0, struct.pack(">I", 1), sample_entry)
    stts = _full_box(b"stts", 0, 0, struct.pack(">III", 1, len(frames), delta))
    stsc = _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, len(frames), 1))
    stsz = _full_box(
        b"stsz",
        0,
        0,
        struct.pack(">II", 0, len(frames)),
        *(struct.pack(">I", len(f)) for f in frames),
    )

    def moov(chunk_offset: int) -> bytes:
        stco = _full_box(b"stco", 0, 0, struct.pack(">II", 1, chunk_offset))
        stbl = _box(b"stbl", stsd, stts, stsc, stsz, stco)
        minf = _box(b"minf", vmhd, dinf, stbl)
        trak = _box(b"trak", tkhd, _box(b"mdia", mdhd, hdlr, minf))
        return _box(b"moov", mvhd, trak)

    size_of_moov = len(moov(0))
    offset = len(ftyp) + size_of_moov + len(mdat_header)
    return ftyp + moov(offset) + mdat_header + b"".join(frames)


def render_video(prompt: str, seed: int) -> bytes:
    """A short clip of simulator pictures (frame number stamped on each)."""
    frames = [
        render_image(prompt=f"{prompt} [{n + 1}]", seed=seed, index=n, size=VIDEO_SIZE, fmt="jpeg")
        for n in range(VIDEO_FPS * VIDEO_SECONDS)
    ]
    return mjpeg_mp4(frames, *VIDEO_SIZE, VIDEO_FPS)


def audio_seconds(text: str) -> float:
    return min(MAX_AUDIO_SECONDS, max(0.5, len(text) * SECONDS_PER_CHARACTER))


def render_wav(text: str, seed: int) -> bytes:
    """16-bit mono PCM at 16 kHz: a tone (pitch from the seed) fading in and out."""
    seconds = audio_seconds(text)
    count = int(AUDIO_RATE * seconds)
    pitch = 220.0 + (seed % 440)
    fade = max(1, AUDIO_RATE // 50)
    samples = bytearray()
    for n in range(count):
        envelope = min(1.0, n / fade, (count - n) / fade)
        value = 0.3 * envelope * math.sin(2 * math.pi * pitch * n / AUDIO_RATE)
        samples += struct.pack("<h", int(value * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(AUDIO_RATE)
        wav.writeframes(bytes(samples))
    return out.getvalue()
