"""The request id of an inference request: the client's `x-request-id` when it is a safe token."""

from __future__ import annotations

import os
import re
from itertools import count

# A client's own request id is kept when it is a plain token; anything else is replaced.
_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")
_PREFIX = "req_" + os.urandom(6).hex()
_counter = count(1)


def request_id(client_value: str | None) -> str:
    """The client's `x-request-id` if it is a safe token, else a new id unique across processes."""
    if client_value is not None and _CLIENT_REQUEST_ID.fullmatch(client_value):
        return client_value
    return f"{_PREFIX}{next(_counter):x}"
