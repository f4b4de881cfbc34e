"""A small shipped table of well-known models: context window and capabilities, for `/v1/models`.

Looked up by a deployment's upstream model name, longest prefix first, after the name is brought to a
common spelling (`normalized_name`): lower case, the part after the last `/` (Hugging Face
`meta-llama/Llama-3.1-8B-Instruct`, Gemini `models/gemini-2.0-flash`), and Bedrock's region and
vendor prefixes removed (`us.anthropic.claude-…`). Figures are the providers' published ones; a
configured `models[].context_window` / `capabilities` always wins, so a wrong or missing row here is
fixed in config, not code.

`json` means the model can be asked for JSON output through gatecore (`response_format`): native
JSON mode, or the forced-tool form the anthropic provider uses.
"""

from __future__ import annotations

from typing import NamedTuple


class ModelFacts(NamedTuple):
    context_window: int
    tools: bool
    vision: bool
    json: bool


_T, _F = True, False

# prefix → facts. Longer prefixes win, so a family row can be refined by a more specific one.
MODEL_TABLE: dict[str, ModelFacts] = {
    # OpenAI
    "gpt-5": ModelFacts(400_000, _T, _T, _T),
    "gpt-4.1": ModelFacts(1_047_576, _T, _T, _T),
    "gpt-4o": ModelFacts(128_000, _T, _T, _T),
    "gpt-4-turbo": ModelFacts(128_000, _T, _T, _T),
    "gpt-4": ModelFacts(8_192, _T, _F, _F),
    "gpt-3.5-turbo": ModelFacts(16_385, _T, _F, _T),
    "o1": ModelFacts(200_000, _T, _T, _T),
    "o1-mini": ModelFacts(128_000, _F, _F, _F),
    "o3": ModelFacts(200_000, _T, _T, _T),
    "o3-mini": ModelFacts(200_000, _T, _F, _T),
    "o4-mini": ModelFacts(200_000, _T, _T, _T),
    "text-embedding-3": ModelFacts(8_191, _F, _F, _F),
    "text-embedding-ada-002": ModelFacts(8_191, _F, _F, _F),
    # Anthropic
    "claude-3": ModelFacts(200_000, _T, _T, _T),
    "claude-sonnet-4": ModelFacts(200_000, _T, _T, _T),
    "claude-opus-4": ModelFacts(200_000, _T, _T, _T),
    "claude-haiku-4": ModelFacts(200_000, _T, _T, _T),
    # Google
    "gemini-1.5-pro": ModelFacts(2_097_152, _T, _T, _T),
    "gemini-1.5-flash": ModelFacts(1_048_576, _T, _T, _T),
    "gemini-2.0-flash": ModelFacts(1_048_576, _T, _T, _T),
    "gemini-2.5": ModelFacts(1_048_576, _T, _T, _T),
    "gemma-2": ModelFacts(8_192, _F, _F, _F),
    "gemma-3": ModelFacts(131_072, _F, _T, _F),
    # Mistral
    "mistral-large": ModelFacts(131_072, _T, _F, _T),
    "mistral-medium": ModelFacts(131_072, _T, _T, _T),
    "mistral-small": ModelFacts(131_072, _T, _T, _T),
    "pixtral": ModelFacts(131_072, _T, _T, _T),
    "codestral": ModelFacts(256_000, _T, _F, _T),
    "ministral": ModelFacts(131_072, _T, _F, _T),
    "open-mistral-nemo": ModelFacts(131_072, _T, _F, _T),
    "mistral-embed": ModelFacts(8_192, _F, _F, _F),
    "mistral-7b": ModelFacts(32_768, _F, _F, _F),
    "mixtral-8x7b": ModelFacts(32_768, _T, _F, _F),
    "mixtral-8x22b": ModelFacts(65_536, _T, _F, _F),
    # Cohere
    "command-r": ModelFacts(128_000, _T, _F, _T),
    "command-a": ModelFacts(256_000, _T, _F, _T),
    # Open models (Hugging Face, Ollama and Bedrock spellings)
    "llama-3.1": ModelFacts(131_072, _T, _F, _F),
    "llama3.1": ModelFacts(131_072, _T, _F, _F),
    "llama3-1": ModelFacts(131_072, _T, _F, _F),
    "llama-3.2": ModelFacts(131_072, _T, _F, _F),
    "llama3.2": ModelFacts(131_072, _T, _F, _F),
    "llama3-2": ModelFacts(131_072, _T, _F, _F),
    "llama-3.2-11b-vision": ModelFacts(131_072, _F, _T, _F),
    "llama-3.2-90b-vision": ModelFacts(131_072, _F, _T, _F),
    "llama3.2-vision": ModelFacts(131_072, _F, _T, _F),
    "llama-3.3": ModelFacts(131_072, _T, _F, _F),
    "llama3.3": ModelFacts(131_072, _T, _F, _F),
    "llama3-3": ModelFacts(131_072, _T, _F, _F),
    "llama-3": ModelFacts(8_192, _F, _F, _F),
    "llama3": ModelFacts(8_192, _F, _F, _F),
    "qwen2.5": ModelFacts(32_768, _T, _F, _F),
    "qwen2.5-vl": ModelFacts(32_768, _F, _T, _F),
    "qwen3": ModelFacts(32_768, _T, _F, _F),
    "deepseek-r1": ModelFacts(131_072, _F, _F, _F),
    "deepseek-v3": ModelFacts(131_072, _T, _F, _F),
    "deepseek-chat": ModelFacts(65_536, _T, _F, _T),
    "phi-4": ModelFacts(16_384, _F, _F, _F),
    "phi4": ModelFacts(16_384, _F, _F, _F),
}

# Longest first, so the first prefix that matches is the most specific one.
_PREFIXES = sorted(MODEL_TABLE, key=len, reverse=True)
# Bedrock model ids: an optional cross-region inference prefix, then the vendor.
_REGIONS = ("us.", "eu.", "apac.", "global.")
_VENDORS = ("anthropic.", "meta.", "mistral.", "cohere.", "amazon.", "ai21.", "deepseek.", "qwen.")


def normalized_name(model: str) -> str:
    """`model` in the spelling the table uses (see the module docstring)."""
    name = model.lower().rsplit("/", 1)[-1]
    for prefix in _REGIONS:
        if name.startswith(prefix) and name[len(prefix) :].startswith(_VENDORS):
            name = name[len(prefix) :]
            break
    for vendor in _VENDORS:
        if name.startswith(vendor):
            return name[len(vendor) :]
    return name


def model_facts(upstream_model: str) -> ModelFacts | None:
    """The table's row for an upstream model name (longest matching prefix), or None."""
    name = normalized_name(upstream_model)
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return MODEL_TABLE[prefix]
    return None
