"""Fixtures of the security suite: the end-to-end suite's mock upstream and gateway factory.

Each module here replays one attack from issue 17 through a real gatecore server and is named after
the attack; each would fail on the code the issue was filed against.
"""

from __future__ import annotations

from ..e2e.conftest import gateway_factory, postgres, refused, store_url, upstream

__all__ = ["gateway_factory", "postgres", "refused", "store_url", "upstream"]
