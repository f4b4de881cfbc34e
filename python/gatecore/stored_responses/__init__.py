"""Stored responses of `/v1/responses` (`store: true`): kept per owner (the key's team), read back,
continued with `previous_response_id`, deleted, purged after the retention."""

from gatecore.stored_responses.repository import ResponseStore, StoredResponse, owner_of

__all__ = ["ResponseStore", "StoredResponse", "owner_of"]
