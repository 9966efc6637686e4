"""What a media store URL names, checked without touching the store: ``file:///abs/dir`` or
``s3://bucket/prefix``. Settings check it when they are read (a typo is one line at start-up,
not a failed task later); ``models/media_store.py`` opens what it names."""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class StoreLocation:
    scheme: str
    """``file`` or ``s3``."""
    root: Path | None = None
    """The directory of a ``file://`` store."""
    bucket: str | None = None
    prefix: str | None = None
    """The bucket and key prefix of an ``s3://`` store."""


def parse_store_url(url: str) -> StoreLocation:
    """The store ``url`` names; ValueError, naming the URL and the problem, for any other."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        root = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not root.is_absolute():
            raise ValueError(f"media store {url!r}: a file:// URL needs an absolute path")
        return StoreLocation("file", root=root)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"media store {url!r}: an s3:// URL names a bucket")
        return StoreLocation("s3", bucket=parts.netloc, prefix=parts.path.strip("/") or None)
    raise ValueError(f"media store {url!r}: the scheme must be file:// or s3://")
