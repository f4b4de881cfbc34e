"""The policy fields every identity level sets (org, team, user, key), declared once.

The store's records (`identity/records.py`), the admin API's bodies and answers (`admin/wire.py`) and
the compiled policies (`identity/snapshot.py`) all take them from here, so a new policy field is one
edit here (plus its column in a migration).
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import msgspec
from msgspec import UNSET, Meta, UnsetType

Count = Annotated[int, Meta(ge=0)]
Usd = Annotated[float, Meta(ge=0)]

# The limits a level may only narrow from the level above (identity/rules.py), and that the compiled
# policies carry (KeyPolicy, Scope).
LIMIT_FIELDS = ("rpm", "tpm", "max_parallel", "budget_usd")

S = TypeVar("S", bound=msgspec.Struct)


class PolicyFields(msgspec.Struct, kw_only=True):
    """Allowed models (None: every model the level above allows), limits and free metadata."""

    models: list[str] | None = None
    rpm: Count | None = None
    tpm: Count | None = None
    max_parallel: Count | None = None
    budget_usd: Usd | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class KeyPolicyFields(PolicyFields, kw_only=True):
    """What a key sets beyond a tenant: its tags (reported with its usage)."""

    tags: list[str] = msgspec.field(default_factory=list)


def limits_of(fields: PolicyFields) -> dict[str, Any]:
    """The limits of a record, as keyword arguments of KeyPolicy or Scope."""
    return {name: getattr(fields, name) for name in LIMIT_FIELDS}


def carried(source: msgspec.Struct, target: type[S], **changed: Any) -> S:
    """A `target` with every field it shares by name with `source`, and `changed` on top.

    Converts between the forms of one record (create body → record → answer) without writing each
    shared field out again.
    """
    values = {name: getattr(source, name) for name in target.__struct_fields__ if hasattr(source, name)}
    values.update(changed)
    return target(**values)


def partial_of(
    source: type[msgspec.Struct], name: str, doc: str, *, leave_out: tuple[str, ...] = ()
) -> type[msgspec.Struct]:
    """A body that changes a record: `source`'s fields, each optional (UNSET: absent, so unchanged).

    A field that may be null in `source` may be null here too (that clears it).
    """
    fields = [
        (field.name, field.type | UnsetType, UNSET)
        for field in msgspec.structs.fields(source)
        if field.name not in leave_out
    ]
    return msgspec.defstruct(
        name,
        fields,
        kw_only=True,
        forbid_unknown_fields=True,
        module=source.__module__,
        namespace={"__doc__": doc},
    )
