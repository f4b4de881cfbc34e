"""Persistent state: one schema on SQLite (default) or PostgreSQL, behind one small async interface."""

from gatecore.store.base import Store, StoreError, Transaction
from gatecore.store.open import default_store_url, open_store

__all__ = ["Store", "StoreError", "Transaction", "default_store_url", "open_store"]
