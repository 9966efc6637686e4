"""Tenants and API keys: keys are random, shown once, and stored only as a SHA-256 digest."""

import hashlib
import hmac
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.secretbox import SecretBox
from models.tables import ApiKey, Tenant
from models.types import utcnow
from models.webhook_secrets import current_secret

KEY_PREFIX = "gq_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_tenant(session: Session, name: str) -> Tenant:
    tenant = session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        tenant = Tenant(name=name)
        session.add(tenant)
        session.flush()
    return tenant


def create_key(
    session: Session, *, name: str, tenant_name: str | None = None, box: SecretBox | None = None
) -> tuple[ApiKey, str]:
    """Create a key for tenant ``tenant_name`` (default: a tenant named like the key). With
    ``box``, a new tenant gets its webhook signing secret now (else on first use)."""
    tenant = ensure_tenant(session, tenant_name or name)
    if box is not None:
        current_secret(session, box, tenant.id)
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(tenant_id=tenant.id, name=name, prefix=plain[:10], key_hash=hash_key(plain))
    session.add(row)
    session.flush()
    return row, plain


def find_key(session: Session, presented: str) -> ApiKey | None:
    """Return the live key matching ``presented``; the digest comparison is constant-time."""
    digest = hash_key(presented)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest))
    if row is None or row.revoked_at is not None:
        return None
    return row if hmac.compare_digest(row.key_hash, digest) else None


def revoke_key(session: Session, *, key_id_or_prefix: str, now: datetime | None = None) -> bool:
    rows = session.scalars(select(ApiKey).where(ApiKey.revoked_at.is_(None))).all()
    for row in rows:
        if str(row.id) == key_id_or_prefix or row.prefix == key_id_or_prefix:
            row.revoked_at = now or utcnow()
            return True
    return False


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)).all())
