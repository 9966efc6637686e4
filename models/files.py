"""The files in a model's output, wherever they sit.

fal's models answer with file objects (``{"url", "content_type"?, "file_name"?, "file_size"?}``,
images adding ``width``/``height``) under names of their own: ``images[]`` for FLUX, ``video``
for Kling, ``audio`` for speech, ``model_mesh`` or ``files[]`` deeper down for others. Media
storage, the URL rewriting of answers and the CLI's downloads all need the same list, in the
same order (a file's position is its index here), so they all read it from :func:`file_objects`
and none of them knows a model's output shape. Standard library only: the CLI imports it.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FILE_SCHEMES = ("http://", "https://", "data:")
"""What a file object's ``url`` starts with: a download, or the bytes inline (``sync_mode``)."""
HTTP_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class FileObject:
    """One file of an output: where it sits (a JSON Pointer) and what the upstream says of it."""

    pointer: str
    url: str
    content_type: str | None = None
    file_name: str | None = None
    file_size: int | None = None

    @property
    def downloadable(self) -> bool:
        """An http(s) URL (not inline ``data:`` bytes): something a copy can fetch."""
        return self.url.startswith(HTTP_SCHEMES)


def file_objects(output: Any, pointer: str = "") -> Iterator[FileObject]:
    """Every file object in ``output`` (dicts and lists at any depth), in document order.

    A file object is a JSON object whose ``url`` is a string starting ``http://``,
    ``https://`` or ``data:``; what it holds is not searched further (a file has no files)."""
    if isinstance(output, dict):
        url = output.get("url")
        if isinstance(url, str) and url.startswith(FILE_SCHEMES):
            yield FileObject(
                pointer,
                url,
                _text(output.get("content_type")),
                _text(output.get("file_name")),
                _size(output.get("file_size")),
            )
            return
        for name, value in output.items():
            escaped = str(name).replace("~", "~0").replace("/", "~1")
            yield from file_objects(value, f"{pointer}/{escaped}")
    elif isinstance(output, list):
        for index, value in enumerate(output):
            yield from file_objects(value, f"{pointer}/{index}")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _size(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value
