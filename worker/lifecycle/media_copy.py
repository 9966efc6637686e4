"""Copy one file from its upstream URL into the media store: streamed, never whole in memory.

The size limit is enforced while reading (a ``Content-Length`` over it is refused before the
first byte); the SHA-256 and the size are computed from the bytes as they pass; the content
type is sniffed from the first bytes (``sniff.py``) before the write begins, so an S3 object
carries it (what a presigned URL answers with), the header only noted when it disagrees.
Failures come out as two exception families: :class:`CopyTransient` (5xx, 408, 429, timeouts,
resets: try again later) and :class:`CopyRejected` (404 and other 4xx, over the size limit, an
address the media address policy refuses: never worth another try).
"""

import hashlib
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
from ssrfguard import SSRFGuardError

from models.destinations import RefusedDestination
from models.media_store import MediaStore
from worker.lifecycle.sniff import SNIFF_BYTES, declared, sniff

TRANSIENT_CODES = frozenset({408, 425, 429})
BLOCKED = "blocked: the file's address is not allowed by the media address policy"
"""Never which address or why: the event log must not map the inside network."""


class CopyTransient(Exception):
    """The copy failed in a way another try may not (5xx, 408/429, timeout, reset)."""


class CopyRejected(Exception):
    """The copy can never succeed (the file is gone, forbidden, or too large)."""


@dataclass(frozen=True)
class Copied:
    sha256: str
    size: int
    content_type: str
    declared_type: str | None

    @property
    def mismatch(self) -> bool:
        return self.declared_type is not None and self.declared_type != self.content_type


@dataclass
class _Tally:
    max_bytes: int
    deadline: float
    size: int = 0
    head: bytes = b""
    digest: "hashlib._Hash" = field(default_factory=hashlib.sha256)
    problem: Exception | None = None

    def count(self, response: httpx.Response) -> Iterator[bytes]:
        for chunk in response.iter_raw(256 * 1024):
            self.size += len(chunk)
            if self.size > self.max_bytes:
                self.problem = CopyRejected(f"over the size limit of {self.max_bytes} bytes")
                raise self.problem
            if time.monotonic() > self.deadline:
                self.problem = CopyTransient("the copy took longer than its time limit")
                raise self.problem
            if len(self.head) < SNIFF_BYTES:
                self.head += chunk[: SNIFF_BYTES - len(self.head)]
            self.digest.update(chunk)
            yield chunk

    def read_head(self, chunks: Iterator[bytes]) -> list[bytes]:
        """The chunks that hold the first ``SNIFF_BYTES`` (fewer: the whole file), read before
        the write begins so the object is stored with its sniffed type."""
        taken: list[bytes] = []
        for chunk in chunks:
            taken.append(chunk)
            if len(self.head) >= SNIFF_BYTES:
                break
        return taken


def copy_file(
    http: httpx.Client,
    store: MediaStore,
    *,
    url: str,
    key: str,
    max_bytes: int,
    timeout: float,
) -> Copied:
    """Stream ``url`` into ``store`` under ``key``; raise CopyTransient or CopyRejected."""
    tally = _Tally(max_bytes=max_bytes, deadline=time.monotonic() + timeout)
    try:
        with http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response:
            _check(response, max_bytes)
            try:
                chunks = tally.count(response)
                head = tally.read_head(chunks)
                content_type = sniff(tally.head)
                store.put(key, itertools.chain(head, chunks), content_type=content_type)
            except Exception as exc:
                if tally.problem is not None:
                    raise tally.problem from None
                if isinstance(exc, httpx.HTTPError):
                    raise CopyTransient(f"reading the file: {type(exc).__name__}") from exc
                raise CopyTransient(f"writing the copy: {type(exc).__name__}: {exc}"[:300]) from exc
            kind = declared(response.headers.get("content-type"))
    except (RefusedDestination, SSRFGuardError):
        raise CopyRejected(BLOCKED) from None
    except httpx.HTTPError as exc:
        raise CopyTransient(f"fetching the file: {type(exc).__name__}") from exc
    return Copied(tally.digest.hexdigest(), tally.size, content_type, kind)


def _check(response: httpx.Response, max_bytes: int) -> None:
    code = response.status_code
    if code >= 500 or code in TRANSIENT_CODES:
        raise CopyTransient(f"HTTP {code}")
    if code != 200:
        raise CopyRejected(f"HTTP {code}")
    length = response.headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise CopyRejected(f"over the size limit of {max_bytes} bytes ({length} declared)")
