"""Where genqueue keeps the output files it copied: one small interface over obstore.

``open_store`` reads a store URL: ``file:///abs/dir`` (the default, ``<data dir>/media``) or
``s3://bucket/prefix`` (S3, R2, GCS's S3 API, MinIO: obstore's S3 client, Rust ``object_store``
underneath). S3 settings come from the standard ``AWS_*`` environment variables (obstore reads
them: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ENDPOINT_URL``…);
an explicit endpoint or region passed here wins. Objects are written atomically: a reader never
sees half a file, and a write that fails leaves nothing under its key.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, S3Store

from models.store_url import parse_store_url

READ_CHUNK = 256 * 1024
WRITE_BUFFER = 8 * 1024 * 1024
"""Bytes a write holds in memory at most: a smaller object is written whole when its last
chunk has come (one PUT); a larger one goes up in parts of this size (S3's multipart upload
takes parts of 5 MiB and more)."""


class StoredObjectMissing(LookupError):
    """No object under that key."""


@dataclass(frozen=True)
class ObjectInfo:
    size: int
    e_tag: str | None


class MediaStore:
    """Put, read (whole, streamed or a byte range), stat and delete objects by key."""

    def __init__(self, store: Any, url: str) -> None:
        self._store = store
        self.url = url

    @property
    def can_sign(self) -> bool:
        """Whether :meth:`sign` can make URLs (an S3 store; a directory cannot)."""
        return isinstance(self._store, S3Store)

    def put(self, key: str, chunks: Iterable[bytes], *, content_type: str | None = None) -> None:
        """Write ``key`` from ``chunks`` as they come (at most ``WRITE_BUFFER`` bytes in
        memory); atomic. An exception raised by ``chunks`` aborts the write and propagates.
        ``content_type`` is kept with an S3 object (what a presigned URL answers with); a
        directory keeps none.

        The chunks are written from the calling thread, through an obstore writer: handing
        obstore the iterator instead (``obstore.put``) has its runtime's threads take the GIL
        back for every chunk, which cost the media tick about a sixth of its copies per second
        (M1 in ``benchmarks/RESULTS.md``)."""
        attributes: Any = {"Content-Type": content_type} if content_type and self.can_sign else None
        with obstore.open_writer(
            self._store, key, attributes=attributes, buffer_size=WRITE_BUFFER
        ) as out:
            for chunk in chunks:
                out.write(chunk)

    def sign(self, keys: Sequence[str], expires_in: timedelta) -> list[str]:
        """Presigned GET URLs of ``keys`` (obstore's ``sign``: computed locally with the
        store's credentials, no request made), valid for ``expires_in``."""
        if not keys:
            return []
        return list(obstore.sign(self._store, "GET", list(keys), expires_in))

    def head(self, key: str) -> ObjectInfo:
        try:
            meta = obstore.head(self._store, key)
        except (NotFoundError, FileNotFoundError) as exc:
            raise StoredObjectMissing(key) from exc
        return ObjectInfo(size=int(meta["size"]), e_tag=meta.get("e_tag"))

    def read(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes of ``key`` from ``start`` up to ``end`` (exclusive; None: to the end), in
        chunks. Raises :class:`StoredObjectMissing` before the first chunk."""
        options: dict[str, Any] = {}
        if start or end is not None:
            options["range"] = (start, end) if end is not None else {"offset": start}
        try:
            result = obstore.get(self._store, key, options=options or None)  # type: ignore[arg-type]
        except (NotFoundError, FileNotFoundError) as exc:
            raise StoredObjectMissing(key) from exc
        return (bytes(chunk) for chunk in result.stream(min_chunk_size=READ_CHUNK))

    def read_all(self, key: str) -> bytes:
        return b"".join(self.read(key))

    def delete(self, key: str) -> None:
        """Remove ``key``; a key already gone is not an error."""
        try:
            obstore.delete(self._store, key)
        except (NotFoundError, FileNotFoundError):
            return

    def keys(self, prefix: str | None = None) -> list[str]:
        return [
            str(meta["path"])
            for batch in obstore.list(self._store, prefix=prefix)
            for meta in batch
        ]


def open_store(
    url: str,
    *,
    endpoint: str | None = None,
    region: str | None = None,
) -> MediaStore:
    """The store a URL names (see the module docstring); ValueError for any other
    (``models/store_url.py``)."""
    where = parse_store_url(url)
    if where.root is not None:
        where.root.mkdir(parents=True, exist_ok=True)
        return MediaStore(LocalStore(where.root), url)
    config: dict[str, Any] = {}
    if endpoint:
        config["endpoint"] = endpoint
    if region:
        config["region"] = region
    client: Any = {"allow_http": True} if (endpoint or "").startswith("http://") else None
    store = S3Store(where.bucket, prefix=where.prefix, client_options=client, **config)
    return MediaStore(store, url)
