"""Secrets genqueue must read back (the tenants' webhook signing secrets), encrypted at rest.

Fernet (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under a key derived with HKDF-SHA256
from a master secret: ``GENQUEUE_SECRET_KEY`` (at least 32 characters; a multi-host deployment
sets it, the same on every host), or else a key file in the data dir (``secret.key``), created
on first use with mode 0600, so one machine works out of the box. A database dump alone does
not reveal a secret; losing the master secret makes the stored ones unreadable (rotate them).
"""

import base64
import contextlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from models.settings import Settings

KEY_FILE = "secret.key"
PURPOSE = b"genqueue webhook signing secrets v1"


class SecretUnreadable(Exception):
    """A stored secret does not decrypt under this master secret (another key was used)."""


class SecretBox:
    def __init__(self, master: str) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=PURPOSE).derive(
            master.encode()
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise SecretUnreadable(
                "a stored secret does not decrypt: GENQUEUE_SECRET_KEY (or the data dir's "
                f"{KEY_FILE}) is not the one it was stored with"
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<key hidden>)"


def secret_box(settings: Settings) -> SecretBox:
    """The box every process of one deployment shares: from ``GENQUEUE_SECRET_KEY``, else the
    data dir's key file (created now if missing)."""
    if settings.secret_key is not None:
        return SecretBox(settings.secret_key.get_secret_value())
    return SecretBox(key_file_secret(settings.data_dir.expanduser() / KEY_FILE))


def key_file_secret(path: Path) -> str:
    """The master secret kept in ``path``, created (mode 0600) if missing. Concurrent first
    uses agree: the file appears whole, once (written aside, then hard-linked into place)."""
    existing = _read(path)
    if existing:
        return existing
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    aside = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)
    finally:
        aside.unlink(missing_ok=True)
    found = _read(path)
    if not found:
        raise RuntimeError(f"{path} is empty: delete it to create a new key")
    return found


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
