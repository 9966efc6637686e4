"""Verifying fal's webhooks (UPSTREAM.md §11) and reading their bodies.

A webhook carries ``X-Fal-Webhook-Request-Id``, ``-User-Id``, ``-Timestamp`` (unix seconds) and
``-Signature`` (hex): an ED25519 signature, by one of the keys in fal's JWKS, over
``request_id\\nuser_id\\ntimestamp\\nhex(sha256(raw body))``. A timestamp more than 300 s from
now is refused (a replay), as is a body whose ``request_id`` is not the signed one.
"""

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.errors import ApiError
from api.fal.jwks import JwksUnavailable
from models.upstream_webhook import FalWebhook

REQUEST_ID = "x-fal-webhook-request-id"
USER_ID = "x-fal-webhook-user-id"
TIMESTAMP = "x-fal-webhook-timestamp"
SIGNATURE = "x-fal-webhook-signature"
HEADERS = (REQUEST_ID, USER_ID, TIMESTAMP, SIGNATURE)
TOLERANCE_SECONDS = 300
ED25519_SIGNATURE_BYTES = 64


class Keys(Protocol):
    """Where the keys come from (``api.fal.jwks``: the cache, or its fresh keys only)."""

    def keys(self) -> list[Ed25519PublicKey]: ...

    def refresh(self) -> list[Ed25519PublicKey] | None: ...


class WebhookRefused(ApiError):
    """401 (not proven to be fal's), 400 (fal's, but unreadable) or 503 (no keys to check)."""

    def __init__(self, status_code: int, detail: str, *, reason: str) -> None:
        headers = {"Retry-After": "30"} if status_code == 503 else None
        super().__init__(status_code, detail, headers=headers)
        self.reason = reason
        """The metric label."""


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    digest = hashlib.sha256(body).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()


def verify(headers: Mapping[str, str], body: bytes, *, keys: Keys, now: float) -> str:
    """The request id the signature vouches for; raises :class:`WebhookRefused` otherwise."""
    missing = [name for name in HEADERS if not headers.get(name)]
    if missing:
        names = ", ".join(_title(name) for name in missing)
        raise WebhookRefused(401, f"missing webhook header(s): {names}", reason="missing_headers")
    stamp = headers[TIMESTAMP].strip()
    if not stamp.isdigit():
        raise WebhookRefused(401, f"{_title(TIMESTAMP)} must be unix seconds", reason="timestamp")
    skew = int(stamp) - now
    if abs(skew) > TOLERANCE_SECONDS:
        when = "in the future" if skew > 0 else "old"
        raise WebhookRefused(
            401,
            f"{_title(TIMESTAMP)} is {abs(skew):.0f} s {when}; at most {TOLERANCE_SECONDS} s "
            "is accepted",
            reason="timestamp",
        )
    try:
        signature = bytes.fromhex(headers[SIGNATURE].strip())
    except ValueError:
        signature = b""
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise WebhookRefused(
            401, f"{_title(SIGNATURE)} is not a hex ED25519 signature", reason="signature"
        )
    message = signed_message(headers[REQUEST_ID], headers[USER_ID], stamp, body)
    try:
        if not _any_verifies(keys.keys(), signature, message):
            fresh = keys.refresh()  # fal may have rotated its key
            if fresh is None or not _any_verifies(fresh, signature, message):
                raise WebhookRefused(
                    401, "the signature does not verify against fal's keys", reason="signature"
                )
    except JwksUnavailable as exc:
        raise WebhookRefused(503, f"cannot check the signature now: {exc}", reason="jwks") from exc
    return headers[REQUEST_ID]


def parse(body: bytes, *, signed_request_id: str) -> FalWebhook:
    """The webhook's body; raises a 400 :class:`WebhookRefused` naming what is wrong."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        raise WebhookRefused(400, "the body is not JSON", reason="malformed") from None
    if not isinstance(data, dict):
        raise WebhookRefused(400, "the body must be a JSON object", reason="malformed")
    request_id, status = data.get("request_id"), data.get("status")
    if request_id != signed_request_id:
        raise WebhookRefused(
            400,
            f"the body's request_id {request_id!r} is not the signed {_title(REQUEST_ID)}",
            reason="malformed",
        )
    if status not in ("OK", "ERROR"):
        raise WebhookRefused(400, "status must be 'OK' or 'ERROR'", reason="malformed")
    error, payload_error = data.get("error"), data.get("payload_error")
    return FalWebhook(
        request_id=request_id,
        status=status,
        payload=data.get("payload"),
        error=error if isinstance(error, str) else None,
        payload_error=payload_error if isinstance(payload_error, str) else None,
    )


def _any_verifies(keys: list[Ed25519PublicKey], signature: bytes, message: bytes) -> bool:
    for key in keys:
        try:
            key.verify(signature, message)
        except InvalidSignature:
            continue
        return True
    return False


def _title(header: str) -> str:
    return "-".join(part.capitalize() for part in header.split("-"))
