"""Token counting every stage shares: the prompt's tokens, as routing (context windows), limits
(tpm and budget estimates) and the relays (usage when the upstream reports none) count them."""

from __future__ import annotations

from gatecore._core import count_prompt_tokens


def count_input_tokens(request_body: bytes, encoding: str) -> int:
    """Tokens of the prompt text of an OpenAI-format request (messages, prompt or input): each text's
    tokens (remembered per text, `_core.count_prompt_tokens`) plus one per newline joining them."""
    return count_prompt_tokens(request_body, encoding)
