"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the
``standardwebhooks`` package: ``webhook-id`` (stable for one generation's delivery, across its
retries and redeliveries, so receivers can dedupe), ``webhook-timestamp`` (this attempt, Unix
seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``,
one per secret in use: two, for 24 h after a rotation)."""

import uuid
from datetime import datetime

from standardwebhooks import Webhook


def message_id(generation_id: uuid.UUID) -> str:
    return f"msg_{generation_id.hex}"


def signed_headers(
    secrets: list[str], *, generation_id: uuid.UUID, body: bytes, now: datetime
) -> dict[str, str]:
    msg_id = message_id(generation_id)
    data = body.decode()
    signatures = [Webhook(secret).sign(msg_id, now, data) for secret in secrets]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": " ".join(signatures),
    }
