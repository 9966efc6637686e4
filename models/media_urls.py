"""Media URLs: capability URLs for the files genqueue stored, and results that carry them.

Built by the API (for its answers) and by the worker (for outbound webhooks); both need the same
signing key (``GENQUEUE_MEDIA_SIGNING_KEY``, or the key file of a shared data dir).

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
from collections.abc import Callable, Collection, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.media import MediaStatus, object_key
from models.media_store import MediaStore
from models.settings import Settings
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
    """Builds a stored file's URL: under ``public_base`` (a CDN or public bucket), presigned
    by the store (``presign``: an object key's URL), or the API's capability URL under one
    public base (the request's, or the configured ``GENQUEUE_PUBLIC_URL``)."""

    def __init__(
        self,
        signer: MediaSigner,
        base: str,
        public_base: str | None,
        presign: Callable[[str], str] | None = None,
    ) -> None:
        self.signer, self.base, self.public_base = signer, base, public_base
        self.presign = presign

    def url(self, row: MediaFile) -> str:
        if self.public_base:
            return f"{self.public_base}/{object_key(row.generation_id, row.position)}"
        if self.presign is not None:
            return self.presign(object_key(row.generation_id, row.position))
        sig = self.signer.signature(row.generation_id, row.position)
        ext = EXTENSIONS.get(row.content_type or "", "")
        return f"{self.base}/media/{row.generation_id}/{row.position}/{sig}{ext}"


def stored_files(session: Session, generation_id: uuid.UUID) -> Sequence[MediaFile]:
    return stored_files_of(session, [generation_id]).get(generation_id, [])


def stored_files_of(
    session: Session, generation_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[MediaFile]]:
    """The stored files of many generations (a page of a list), in one query."""
    found: dict[uuid.UUID, list[MediaFile]] = {}
    if not generation_ids:
        return found
    rows = session.scalars(
        select(MediaFile)
        .where(
            MediaFile.generation_id.in_(generation_ids),
            MediaFile.status == MediaStatus.STORED.value,
        )
        .order_by(MediaFile.generation_id, MediaFile.position)
    ).all()
    for row in rows:
        found.setdefault(row.generation_id, []).append(row)
    return found


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
    urls: MediaUrls | None,
    *,
    keep_upstream: bool,
) -> dict[str, Any] | None:
    """``gen``'s result as genqueue hands it out: with genqueue's URLs for its stored files
    (``urls`` None: none can be made here, the upstream's stay)."""
    return results_for(session, [gen], urls, keep_upstream=keep_upstream)[gen.id]


def results_for(
    session: Session,
    gens: Sequence[Generation],
    urls: MediaUrls | None,
    *,
    keep_upstream: bool,
) -> dict[uuid.UUID, dict[str, Any] | None]:
    """:func:`result_for` of many generations, their stored files read in one query."""
    with_files = [g.id for g in gens if g.media_status is not None and g.result is not None]
    files = stored_files_of(session, with_files) if urls is not None else {}
    return {
        g.id: with_media_urls(g.result, files[g.id], urls, keep_upstream=keep_upstream)
        if urls is not None and g.id in files
        else g.result
        for g in gens
    }


def presigner(settings: Settings, store: MediaStore) -> Callable[[str], str] | None:
    """With ``GENQUEUE_MEDIA_PRESIGN_SECONDS``, the store's presigned GET URL of a key."""
    if not settings.media_presign_seconds:
        return None
    expires_in = timedelta(seconds=settings.media_presign_seconds)
    return lambda key: store.sign([key], expires_in)[0]


def configured_urls(settings: Settings, store: MediaStore) -> MediaUrls | None:
    """The media URLs a process without a request to answer (the worker's webhooks) hands
    out: under ``GENQUEUE_MEDIA_PUBLIC_BASE``, presigned by the store, or under
    ``GENQUEUE_PUBLIC_URL`` signed with the API's key (the setting, or the shared data dir's
    key file); None when none of them is set."""
    presign = presigner(settings, store)
    if not settings.media_public_base and not settings.public_url and presign is None:
        return None
    key = settings.media_signing_key
    signer = MediaSigner(
        load_signing_key(key.get_secret_value() if key else None, settings.data_dir)
    )
    return MediaUrls(signer, settings.public_url or "", settings.media_public_base, presign)
