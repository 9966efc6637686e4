"""Media URLs: capability URLs for the files genqueue stored, and results that carry them.

A stored file's URL is ``{public base}/media/{generation_id}/{position}/{signature}{.ext}``,
where the signature is an HMAC-SHA256 (the standard library's ``hmac``, compared in constant
time) of ``{generation_id}/{position}`` under the media signing key, cut to 192 bits. Like a
fal CDN link it needs no ``Authorization`` header (it can go straight into an ``<img src>``),
and nobody can make one without the key. With ``GENQUEUE_MEDIA_PUBLIC_BASE`` set the URL is
``{base}/{generation_id}/{position}`` instead (a CDN or public bucket in front of the store).
"""

import base64
import copy
import hashlib
import hmac
import os
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.media import MediaStatus, object_key
from models.tables import Generation, MediaFile

SIGNATURE_CHARS = 32  # base64url characters: 192 bits
KEY_FILE = "media-signing.key"
EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/avif": ".avif",
    "video/mp4": ".mp4",
    "video/webm": ".webm",
    "audio/mpeg": ".mp3",
    "audio/wav": ".wav",
    "application/zip": ".zip",
}


def load_signing_key(configured: str | None, data_dir: Path) -> bytes:
    """The configured key, else the data dir's key file (made with 256 random bits, mode 0600,
    on first use; every API process of one data dir shares it)."""
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as out:
        key = base64.urlsafe_b64encode(os.urandom(32))
        out.write(key)
    return key


class MediaSigner:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def signature(self, generation_id: uuid.UUID, position: int) -> str:
        mac = hmac.new(self._key, f"{generation_id}/{position}".encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()).decode()[:SIGNATURE_CHARS]

    def verify(self, generation_id: uuid.UUID, position: int, signature: str) -> bool:
        given = signature.encode("utf-8", "surrogateescape")
        return hmac.compare_digest(self.signature(generation_id, position).encode(), given)


class MediaUrls:
    """Builds a stored file's URL for one request's public base."""

    def __init__(self, signer: MediaSigner, base: str, public_base: str | None) -> None:
        self.signer, self.base, self.public_base = signer, base, public_base

    def url(self, row: MediaFile) -> str:
        if self.public_base:
            return f"{self.public_base}/{object_key(row.generation_id, row.position)}"
        sig = self.signer.signature(row.generation_id, row.position)
        ext = EXTENSIONS.get(row.content_type or "", "")
        return f"{self.base}/media/{row.generation_id}/{row.position}/{sig}{ext}"


def stored_files(session: Session, generation_id: uuid.UUID) -> Sequence[MediaFile]:
    return session.scalars(
        select(MediaFile)
        .where(
            MediaFile.generation_id == generation_id,
            MediaFile.status == MediaStatus.STORED.value,
        )
        .order_by(MediaFile.position)
    ).all()


def with_media_urls(
    result: dict[str, Any] | None,
    files: Sequence[MediaFile],
    urls: MediaUrls,
    *,
    keep_upstream: bool,
) -> dict[str, Any] | None:
    """``result`` with each stored file's ``url`` genqueue's own (and, with ``keep_upstream``,
    the upstream's beside it as ``upstream_url``); files not stored keep the upstream URL."""
    if result is None or not files:
        return result
    out = copy.deepcopy(result)
    for row in files:
        target = _at(out, row.pointer)
        if isinstance(target, dict) and target.get("url") == row.upstream_url:
            target["url"] = urls.url(row)
            if keep_upstream:
                target["upstream_url"] = row.upstream_url
    return out


def _at(doc: Any, pointer: str) -> Any:
    """The value a JSON Pointer names in ``doc``, or None."""
    for raw in pointer.split("/")[1:]:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def result_for(
    session: Session,
    gen: Generation,
    urls: MediaUrls,
    *,
    keep_upstream: bool,
) -> dict[str, Any] | None:
    """``gen``'s result as the API hands it out: with genqueue's URLs for its stored files."""
    if gen.media_status is None:
        return gen.result
    return with_media_urls(
        gen.result, stored_files(session, gen.id), urls, keep_upstream=keep_upstream
    )
