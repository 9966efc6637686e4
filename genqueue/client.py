"""A small client of genqueue's native API (``/v1/generations``), used by the CLI.

Every failure becomes a ``CliError`` whose message says what to do about it: the URL that could
not be reached, the key that was refused, the fields that were invalid.
"""

import base64
import binascii
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote, unquote_to_bytes, urlsplit

import httpx

from genqueue.datadir import DataDir
from genqueue.errors import EXIT_AUTH, EXIT_ERROR, EXIT_INVALID, EXIT_UNREACHABLE, CliError

DEFAULT_API_URL = "http://127.0.0.1:8000"
API_URL_ENV = "GENQUEUE_API_URL"
API_KEY_ENV = "GENQUEUE_API_KEY"


class ApiRefused(CliError):
    """The API answered with an error status: the message to print, and what it said."""

    def __init__(self, message: str, *, code: int, http_status: int, body: Any) -> None:
        super().__init__(message, code=code)
        self.http_status = http_status
        self.body = body


@dataclass(frozen=True)
class ClientConfig:
    url: str
    key: str | None

    @classmethod
    def from_env(cls) -> "ClientConfig":
        """``GENQUEUE_API_URL``/``GENQUEUE_API_KEY``; without them, what a `genqueue up` on the
        same data dir published (its URL and dev key), then the default URL."""
        data = DataDir.from_env()
        url = os.environ.get(API_URL_ENV)
        if not url:
            state = data.running_state() or {}
            url = str(state.get("api_url") or DEFAULT_API_URL)
        key = os.environ.get(API_KEY_ENV) or data.read_secret(data.dev_key_file)
        return cls(url=url.rstrip("/"), key=key)


class ApiClient:
    def __init__(
        self,
        *,
        base_url: str,
        key: str | None,
        timeout: float = 15.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.has_key = bool(key)
        headers = {"Accept": "application/json", "User-Agent": "genqueue-cli"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=timeout, transport=transport
        )
        # Images live on upstream's CDN (or the simulator): never send them our key.
        self._files = httpx.Client(timeout=60.0, follow_redirects=True, transport=transport)

    def create(
        self,
        model: str,
        input: dict[str, Any],
        *,
        idempotency_key: str | None = None,
        await_media: bool = False,
    ) -> dict[str, Any]:
        """Submit; ``await_media``: the caller downloads the files once it ends (``--wait``),
        so genqueue copies them ahead of its backlog."""
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        body: dict[str, Any] = {"model": model, "input": input}
        if await_media:
            body["await_media"] = True
        return self._record("POST", "/v1/generations", json=body, headers=headers)

    def get(self, generation_id: str) -> dict[str, Any]:
        return self._record("GET", f"/v1/generations/{quote(generation_id, safe='')}")

    def cancel(self, generation_id: str) -> dict[str, Any]:
        return self._record("POST", f"/v1/generations/{quote(generation_id, safe='')}/cancel")

    def delete(self, generation_id: str) -> None:
        """Delete an ended generation's outputs (the API answers 204, no body)."""
        self._request("DELETE", f"/v1/generations/{quote(generation_id, safe='')}")

    def resolve(self, id_or_prefix: str) -> str:
        """The id of the one generation whose id begins with ``id_or_prefix`` (a whole id is
        taken as it is); none, or more than one, is a one-line error."""
        try:
            return str(uuid.UUID(id_or_prefix))
        except ValueError:
            pass
        found = self.list(id_prefix=id_or_prefix, limit=2)
        if not found:
            raise CliError(f"not found: no generation's id begins with {id_or_prefix!r}")
        if len(found) > 1:
            raise CliError(
                f"{id_or_prefix!r} is the beginning of more than one id "
                f"({found[0].get('id')}, {found[1].get('id')}, …): give more of it",
                code=EXIT_INVALID,
            )
        return str(found[0].get("id"))

    def list(
        self,
        *,
        status: str | None = None,
        limit: int | None = None,
        id_prefix: str | None = None,
    ) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {}
        if status:
            params["status"] = status
        if id_prefix:
            params["id_prefix"] = id_prefix
        if limit is not None:
            params["limit"] = limit
        answer: Any = self._json("GET", "/v1/generations", params=params)
        if isinstance(answer, dict):
            for name in ("items", "data", "generations", "results"):
                if isinstance(answer.get(name), list):
                    answer = answer[name]
                    break
        if not isinstance(answer, list):
            raise CliError(f"unexpected answer from {self.base_url}/v1/generations")
        return [row for row in answer if isinstance(row, dict)]

    def usage(self, *, since: str | None = None, until: str | None = None) -> dict[str, Any]:
        """``GET /v1/usage``: the key's tenant's counts and costs."""
        params = {k: v for k, v in (("since", since), ("until", until)) if v}
        answer: Any = self._json("GET", "/v1/usage", params=params)
        if not isinstance(answer, dict) or not isinstance(answer.get("lines"), list):
            raise CliError(f"unexpected answer from {self.base_url}/v1/usage")
        return answer

    def download(self, url: str, dest: Path) -> Path:
        """Save one output file (``http(s)://`` or a ``data:`` URL) to ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        if url.startswith("data:"):
            dest.write_bytes(decode_data_url(url))
            return dest
        try:
            with self._files.stream("GET", url) as response:
                if response.status_code != 200:
                    raise CliError(f"could not download {url}: HTTP {response.status_code}")
                with dest.open("wb") as fh:
                    for chunk in response.iter_bytes():
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise CliError(f"could not download {url}: {describe_transport(exc)}") from None
        return dest

    def close(self) -> None:
        self._http.close()
        self._files.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _record(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        answer = self._json(method, path, **kwargs)
        if not isinstance(answer, dict):
            raise CliError(f"unexpected answer from {self.base_url}{path}: not a JSON object")
        return answer

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise CliError(
                f"the API at {self.base_url} answered {method} {path} with non-JSON "
                f"(HTTP {response.status_code}): is {API_URL_ENV} pointing at genqueue?"
            ) from None

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """The API's successful answer; a transport failure or an error status is a
        :class:`CliError` (an :class:`ApiRefused` for the latter)."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CliError(
                f"cannot reach the genqueue API at {self.base_url}: {describe_transport(exc)} "
                f"(is `genqueue up` running? set {API_URL_ENV} to its URL)",
                code=EXIT_UNREACHABLE,
            ) from None
        if response.is_success:
            return response
        raise self._error(response)

    def _error(self, response: httpx.Response) -> "ApiRefused":
        code = response.status_code
        body = _body(response)
        detail = body.get("detail", body) if isinstance(body, dict) else body
        if code in (401, 403):
            if not self.has_key:
                return ApiRefused(
                    f"no API key: the API at {self.base_url} needs one (HTTP {code}); set "
                    f"{API_KEY_ENV} (create one with `genqueue keys create NAME`)",
                    code=EXIT_AUTH,
                    http_status=code,
                    body=body,
                )
            return ApiRefused(
                f"the API at {self.base_url} refused the key in {API_KEY_ENV} (HTTP {code}"
                f"{': ' + _text(detail) if detail else ''}); create one with "
                "`genqueue keys create NAME`",
                code=EXIT_AUTH,
                http_status=code,
                body=body,
            )
        if code == 422:
            message = f"invalid request: {_fields(detail)}"
            return ApiRefused(message, code=EXIT_INVALID, http_status=code, body=body)
        if code == 404:
            message = f"not found: {_text(detail) or response.request.url.path}"
            return ApiRefused(message, code=EXIT_ERROR, http_status=code, body=body)
        return ApiRefused(
            f"the API answered HTTP {code}{': ' + _text(detail) if detail else ''}",
            code=EXIT_ERROR,
            http_status=code,
            body=body,
        )


def describe_transport(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        text = str(exc).lower()
        if "refused" in text:
            return "connection refused"
        if "name or service" in text or "nodename" in text or "resolve" in text:
            return "unknown host"
        return f"connection failed ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return f"not a valid http(s) URL ({exc})"
    return f"{type(exc).__name__}: {exc}"


def decode_data_url(url: str) -> bytes:
    header, _, payload = url.partition(",")
    try:
        if header.endswith(";base64"):
            return base64.b64decode(payload, validate=False)
    except binascii.Error as exc:
        raise CliError(f"could not decode a data: URL ({exc})") from None
    return unquote_to_bytes(payload)


BY_CONTENT_TYPE = {
    "image/jpeg": "jpg",
    "image/jpg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "image/gif": "gif",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/mpeg": "mp3",
    "model/gltf-binary": "glb",
    "application/zip": "zip",
}
"""A downloaded file's extension by its content type (an image, video, audio, mesh, archive)."""
KNOWN_SUFFIXES = {*BY_CONTENT_TYPE.values(), "jpeg", "obj", "ply", "txt", "json"}


def extension_for(
    url: str, content_type: str | None, fallback: str, *, file_name: str | None = None
) -> str:
    """The extension to save a file under: from its content type, its ``data:`` type, its
    file name or its URL's suffix, else ``fallback`` (the output format asked for)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    if kind in BY_CONTENT_TYPE:
        return BY_CONTENT_TYPE[kind]
    if url.startswith("data:"):
        kind = url[5:].split(";")[0].split(",")[0].lower()
        if kind in BY_CONTENT_TYPE:
            return BY_CONTENT_TYPE[kind]
    for path in (file_name or "", urlsplit(url).path):
        suffix = Path(path).suffix.lstrip(".").lower()
        if suffix in KNOWN_SUFFIXES:
            return "jpg" if suffix == "jpeg" else suffix
    return "jpg" if fallback == "jpeg" else fallback


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text.strip()[:200]


def _text(detail: Any) -> str:
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        return _fields(detail)
    if isinstance(detail, dict):
        return str(detail.get("message") or detail.get("msg") or detail)
    return str(detail) if detail else ""


def _fields(detail: Any) -> str:
    """FastAPI's ``[{loc, msg, type}]`` as ``input.prompt: Field required; …``."""
    if not isinstance(detail, list):
        return _text(detail) or "the API refused the input"
    parts = []
    for item in detail:
        if not isinstance(item, dict):
            parts.append(str(item))
            continue
        loc = [str(p) for p in item.get("loc", []) if p != "body"]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {item.get('msg', 'invalid')}")
    return "; ".join(parts) or "the API refused the input"
