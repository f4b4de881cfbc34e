"""What a benchmark run id may be: the `x-gatecore-run-id` header, a key's `run_id` metadata and the
`/admin/v1/runs/{id}` path all take the same tokens, 1-128 characters of `A-Z a-z 0-9 . _ : + = @ -`
(safe in a log line, a CSV cell and, with no `/`, a URL path segment)."""

from __future__ import annotations

import re
from typing import Any

RUN_ID = re.compile(r"[A-Za-z0-9._:+=@-]{1,128}")


def valid_run_id(value: Any) -> str | None:
    """`value` if it is a valid run id, else None."""
    return value if isinstance(value, str) and RUN_ID.fullmatch(value) else None
