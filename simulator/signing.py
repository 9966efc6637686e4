"""fal's webhook signatures (UPSTREAM.md §11), made with the simulator's own ED25519 key.

The signed message is ``request_id\\nuser_id\\ntimestamp\\nhex(sha256(raw body))``; the signature
is hex in ``X-Fal-Webhook-Signature``; the public keys are a JWKS (``kty: OKP``, ``crv:
Ed25519``, ``x`` base64url) at ``/.well-known/jwks.json``. The ED25519 maths is the
``cryptography`` package's.
"""

import base64
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

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


def kid_of(key: Ed25519PrivateKey) -> str:
    """A key id that follows from the public key, so a key read back keeps its id."""
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class WebhookSigner:
    """The key pair the simulator signs its webhooks with. ``rotate`` replaces it (the JWKS
    then lists the new key only, as after a rotation whose old key was withdrawn).

    With a ``key_file`` (the simulator's state dir) the key is read from it, or made and
    written there (PEM, mode 0600), so a restarted simulator signs with the key its receivers
    already hold instead of making them refetch its JWKS."""

    def __init__(self, user_id: str = "simulator-user", *, key_file: Path | None = None) -> None:
        self.user_id = user_id
        self._lock = threading.Lock()
        self._key_file = key_file
        if key_file is not None and key_file.exists():
            loaded = load_pem_private_key(key_file.read_bytes(), password=None)
            if not isinstance(loaded, Ed25519PrivateKey):
                raise ValueError(f"{key_file} does not hold an ED25519 private key")
            self._key = loaded
        else:
            self._key = Ed25519PrivateKey.generate()
            self._save()
        self._kid = kid_of(self._key)

    def rotate(self) -> str:
        """A new key; returns its ``kid``."""
        with self._lock:
            self._key = Ed25519PrivateKey.generate()
            self._kid = kid_of(self._key)
            self._save()
            return self._kid

    def _save(self) -> None:
        if self._key_file is None:
            return
        pem = self._key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        partial = self._key_file.with_suffix(".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
        os.replace(partial, self._key_file)

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
