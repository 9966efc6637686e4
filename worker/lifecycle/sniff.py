"""What a file is, told from its first bytes (the header an upstream sends is only a claim)."""

SNIFF_BYTES = 64

_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (0, b"\x1aE\xdf\xa3", "video/webm"),
    (0, b"OggS", "audio/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"glTF", "model/gltf-binary"),
)
_RIFF = {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}
_FTYP = {b"avif": "image/avif", b"heic": "image/heic", b"qt  ": "video/quicktime"}
UNKNOWN = "application/octet-stream"


def sniff(head: bytes) -> str:
    """The content type ``head`` (a file's first bytes) shows, or ``application/octet-stream``
    when it shows none genqueue knows. Never ``text/html`` or anything a browser would run."""
    for offset, magic, kind in _SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return kind
    if head[:4] == b"RIFF" and head[8:12] in _RIFF:
        return _RIFF[head[8:12]]
    if head[4:8] == b"ftyp":
        return _FTYP.get(head[8:12], "video/mp4")
    if head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return UNKNOWN


def declared(header: str | None) -> str | None:
    """The media type of a ``Content-Type`` header, without parameters, lower case."""
    if not header:
        return None
    return header.split(";", 1)[0].strip().lower() or None
