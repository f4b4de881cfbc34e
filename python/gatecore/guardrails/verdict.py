"""What an external guard (a webhook or a plugin) answers about a request's texts.

The webhook contract (README, "Guardrails"): gatecore POSTs
`{"guardrail", "side": "input", "model", "request_id", "texts": [..]}` and reads back
`{"action": "allow" | "block" | "flag" | "modify", "texts": [..]}` (`texts`, for `modify` only, the
same number of texts, which replace the ones sent).
"""

from __future__ import annotations

import msgspec

ACTIONS = ("allow", "block", "flag", "modify")


class Verdict(msgspec.Struct, frozen=True):
    action: str = "allow"
    texts: list[str] | None = None


VERDICT = msgspec.json.Decoder(Verdict)
