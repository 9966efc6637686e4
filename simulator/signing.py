"""fal's webhook signatures (UPSTREAM.md §11), made with the simulator's own ED25519 key.

The signed message is ``request_id\\nuser_id\\ntimestamp\\nhex(sha256(raw body))``; the signature
is hex in ``X-Fal-Webhook-Signature``; the public keys are a JWKS (``kty: OKP``, ``crv:
Ed25519``, ``x`` base64url) at ``/.well-known/jwks.json``. The ED25519 maths is the
``cryptography`` package's.
"""

import base64
import hashlib
import threading
import uuid
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

REQUEST_ID = "X-Fal-Webhook-Request-Id"
USER_ID = "X-Fal-Webhook-User-Id"
TIMESTAMP = "X-Fal-Webhook-Timestamp"
SIGNATURE = "X-Fal-Webhook-Signature"


def signed_message(request_id: str, user_id: str, timestamp: str, body: bytes) -> bytes:
    """The bytes fal signs: the three headers and the body's SHA-256 (hex), one a line."""
    digest = hashlib.sha256(body).hexdigest()
    return f"{request_id}\n{user_id}\n{timestamp}\n{digest}".encode()


def jwk_of(key: Ed25519PrivateKey, kid: str) -> dict[str, str]:
    """The public half of ``key`` as a JWK."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig", "alg": "EdDSA"}


class WebhookSigner:
    """The key pair the simulator signs its webhooks with. ``rotate`` replaces it (the JWKS
    then lists the new key only, as after a rotation whose old key was withdrawn)."""

    def __init__(self, user_id: str = "simulator-user") -> None:
        self.user_id = user_id
        self._lock = threading.Lock()
        self._key = Ed25519PrivateKey.generate()
        self._kid = uuid.uuid4().hex[:16]

    def rotate(self) -> str:
        """A new key; returns its ``kid``."""
        with self._lock:
            self._key = Ed25519PrivateKey.generate()
            self._kid = uuid.uuid4().hex[:16]
            return self._kid

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [jwk_of(self._key, self._kid)]}

    def headers(
        self,
        request_id: str,
        body: bytes,
        *,
        timestamp: int,
        key: Ed25519PrivateKey | None = None,
    ) -> dict[str, str]:
        """The four ``X-Fal-Webhook-*`` headers of ``body``, signed with ``key`` (default: the
        simulator's own; a stranger's key makes a forgery)."""
        stamp = str(timestamp)
        message = signed_message(request_id, self.user_id, stamp, body)
        with self._lock:
            signer = key or self._key
            signature = signer.sign(message).hex()
        return {
            REQUEST_ID: request_id,
            USER_ID: self.user_id,
            TIMESTAMP: stamp,
            SIGNATURE: signature,
        }
