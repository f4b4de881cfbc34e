"""Token counting every stage shares: the prompt's tokens, as routing (context windows), limits
(tpm and budget estimates) and the relays (usage when the upstream reports none) count them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gatecore._core import HfTokenizer, count_prompt_tokens

if TYPE_CHECKING:
    from gatecore.request.context import RequestContext

# A deployment's own tokenizer (`deployments[].tokenizer.path`) goes by `hf:<path>`, loaded once per
# process (config compile); the other names are tiktoken encodings.
HF_PREFIX = "hf:"
_HF: dict[str, HfTokenizer] = {}


def load_hf_tokenizer(path: str) -> str:
    """Load the `tokenizer.json` at `path` (once per process) and return the name counts use.
    Raises ValueError when it cannot be read or parsed."""
    name = HF_PREFIX + path
    if name not in _HF:
        _HF[name] = HfTokenizer(path)
    return name


def count_input_tokens(request_body: bytes, encoding: str) -> int:
    """Tokens of the prompt text of an OpenAI-format request (messages, prompt or input): each text's
    tokens (remembered per text, `_core.count_prompt_tokens`) plus one per newline joining them.
    `encoding` is a tiktoken encoding, or `hf:<path>` for a loaded Hugging Face tokenizer (exact)."""
    if encoding.startswith(HF_PREFIX):
        return _HF[encoding].count_prompt(request_body)
    return count_prompt_tokens(request_body, encoding)


def prompt_tokenizer(ctx: RequestContext, fallback: str) -> str:
    """What the request's prompt is counted with: its deployment's own tokenizer, else `fallback`."""
    deployment = ctx.deployment
    return deployment.tokenizer if deployment is not None else fallback
