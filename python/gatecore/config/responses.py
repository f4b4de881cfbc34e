"""The `responses` section: stored responses of `/v1/responses` (`store: true`)."""

from __future__ import annotations

import msgspec


class ResponsesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # Stored responses are kept this long (then neither readable nor continued, and purged).
    retention_days: float = 30.0
    # Whether responses asking for `store` (the default) are kept at all.
    store: bool = True
