"""Each tenant's webhook signing secret (Standard Webhooks ``whsec_…``): created with the
tenant (or on first use, for tenants older than it), stored encrypted, rotated on request.

After a rotation both the new and the previous secret sign every delivery for
:data:`ROTATION_OVERLAP`, so a receiver can switch without missing one; a second rotation within
that time drops the oldest secret.
"""

import base64
import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from models.secretbox import SecretBox
from models.tables import Tenant

PREFIX = "whsec_"
SECRET_BYTES = 32
ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def current_secret(session: Session, box: SecretBox, tenant_id: uuid.UUID) -> str:
    """The tenant's secret, created now if it has none (two processes creating at once agree:
    the first write wins)."""
    sealed = session.scalar(select(Tenant.webhook_secret).where(Tenant.id == tenant_id))
    if sealed is None:
        session.execute(
            update(Tenant)
            .where(Tenant.id == tenant_id, Tenant.webhook_secret.is_(None))
            .values(webhook_secret=box.seal(new_secret()))
        )
        sealed = session.scalar(select(Tenant.webhook_secret).where(Tenant.id == tenant_id))
    if sealed is None:
        raise LookupError(f"no tenant {tenant_id}")
    return box.open(sealed)


def rotate(session: Session, box: SecretBox, tenant_id: uuid.UUID, *, now: datetime) -> str:
    """Give the tenant a new secret; the current one keeps signing for 24 h. Returns the new."""
    previous = current_secret(session, box, tenant_id)
    fresh = new_secret()
    session.execute(
        update(Tenant)
        .where(Tenant.id == tenant_id)
        .values(
            webhook_secret=box.seal(fresh),
            webhook_secret_previous=box.seal(previous),
            webhook_secret_rotated_at=now,
        )
    )
    return fresh


def signing_secrets(
    session: Session, box: SecretBox, tenant_ids: set[uuid.UUID], *, now: datetime
) -> dict[uuid.UUID, list[str]]:
    """The secrets each tenant's deliveries are signed with now: the current one, and the
    previous one within 24 h of a rotation."""
    found: dict[uuid.UUID, list[str]] = {}
    for tenant_id in tenant_ids:
        current = current_secret(session, box, tenant_id)
        found[tenant_id] = [current]
    rows = session.execute(
        select(Tenant.id, Tenant.webhook_secret_previous).where(
            Tenant.id.in_(tenant_ids),
            Tenant.webhook_secret_previous.is_not(None),
            Tenant.webhook_secret_rotated_at > now - ROTATION_OVERLAP,
        )
    ).all()
    for tenant_id, sealed in rows:
        if sealed is not None:
            found[tenant_id].append(box.open(sealed))
    return found
