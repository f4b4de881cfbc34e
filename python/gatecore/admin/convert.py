"""Times and records between the store's form (epoch seconds) and the API's (RFC 3339)."""

from __future__ import annotations

import datetime
from typing import Literal

from gatecore.admin.wire import KeyOut, TenantOut
from gatecore.identity.records import ApiKey, Tenant
from gatecore.policy.fields import carried

UTC = datetime.UTC


def to_datetime(epoch: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(epoch, UTC)


def maybe_datetime(epoch: float | None) -> datetime.datetime | None:
    return None if epoch is None else to_datetime(epoch)


def to_epoch(moment: datetime.datetime) -> float:
    """Seconds since the epoch; a time without a zone is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def key_out(key: ApiKey, now: float) -> KeyOut:
    status: Literal["active", "expired", "revoked"]
    if key.revoked_at is not None:
        status = "revoked"
    elif key.expires_at is not None and now >= key.expires_at:
        status = "expired"
    else:
        status = "active"
    return carried(
        key,
        KeyOut,
        status=status,
        expires_at=maybe_datetime(key.expires_at),
        revoked_at=maybe_datetime(key.revoked_at),
        previous_valid_until=maybe_datetime(key.previous_valid_until),
        created_at=to_datetime(key.created_at),
        updated_at=to_datetime(key.updated_at),
    )


def tenant_out(tenant: Tenant) -> TenantOut:
    return carried(
        tenant,
        TenantOut,
        created_at=to_datetime(tenant.created_at),
        updated_at=to_datetime(tenant.updated_at),
    )
