"""The shipped price table: list prices in USD per 1M tokens, by vendor and model name (or prefix).

Source: each vendor's public pricing page (platform.openai.com/docs/pricing,
platform.claude.com/docs/en/about-claude/pricing, ai.google.dev/gemini-api/docs/pricing,
mistral.ai/pricing, aws.amazon.com/bedrock/pricing), standard (non-batch) tier, the short-context tier
where a vendor has two, read through public references on AS_OF. Prices change: a deployment's
`pricing` block in the config overrides this table, and a release that changes a figure bumps VERSION.

Each entry is `model name or prefix: (input, output, cached input)`. A name matches exactly first,
then the longest entry that prefixes it (`gpt-4o-mini-2024-07-18` → `gpt-4o-mini`), so dated
snapshots share their family's price. `cached input` is the prompt-cache read price (Anthropic's
"cache hits", OpenAI's "cached input", Gemini's context-cache price); None where the vendor lists
none, and then cached tokens are billed as input.
"""

from __future__ import annotations

VERSION = "2026.11.1"
AS_OF = "2026-11-25"

Entry = tuple[float, float, float | None]

OPENAI: dict[str, Entry] = {
    "gpt-5.5": (5.00, 30.00, 0.50),
    "gpt-5.5-pro": (30.00, 180.00, None),
    "gpt-5.4": (2.50, 15.00, 0.25),
    "gpt-5.4-mini": (0.75, 4.50, 0.075),
    "gpt-5.4-nano": (0.20, 1.25, 0.02),
    "gpt-5.4-pro": (30.00, 180.00, None),
    "gpt-5": (1.25, 10.00, 0.125),
    "gpt-5-mini": (0.25, 2.00, 0.025),
    "gpt-5-nano": (0.05, 0.40, 0.005),
    "gpt-4.1": (2.00, 8.00, 0.50),
    "gpt-4.1-mini": (0.40, 1.60, 0.10),
    "gpt-4.1-nano": (0.10, 0.40, 0.025),
    "gpt-4o": (2.50, 10.00, 1.25),
    "gpt-4o-mini": (0.15, 0.60, 0.075),
    "gpt-4-turbo": (10.00, 30.00, None),
    "gpt-4": (30.00, 60.00, None),
    "gpt-3.5-turbo": (0.50, 1.50, None),
    "o1": (15.00, 60.00, 7.50),
    "o1-mini": (1.10, 4.40, 0.55),
    "o1-pro": (150.00, 600.00, None),
    "o3": (2.00, 8.00, 0.50),
    "o3-mini": (1.10, 4.40, 0.55),
    "o3-pro": (20.00, 80.00, None),
    "o4-mini": (1.10, 4.40, 0.275),
    "text-embedding-3-small": (0.02, 0.0, None),
    "text-embedding-3-large": (0.13, 0.0, None),
    "text-embedding-ada-002": (0.10, 0.0, None),
}

ANTHROPIC: dict[str, Entry] = {
    "claude-opus-5": (5.00, 25.00, 0.50),
    "claude-opus-4-8": (5.00, 25.00, 0.50),
    "claude-opus-4-7": (5.00, 25.00, 0.50),
    "claude-opus-4-6": (5.00, 25.00, 0.50),
    "claude-opus-4-5": (5.00, 25.00, 0.50),
    "claude-opus-4-1": (15.00, 75.00, 1.50),
    "claude-opus-4": (15.00, 75.00, 1.50),
    "claude-sonnet-4": (3.00, 15.00, 0.30),  # 4, 4.5, 4.6
    "claude-3-7-sonnet": (3.00, 15.00, 0.30),
    "claude-3-5-sonnet": (3.00, 15.00, 0.30),
    "claude-haiku-4-5": (1.00, 5.00, 0.10),
    "claude-3-5-haiku": (0.80, 4.00, 0.08),
    "claude-3-opus": (15.00, 75.00, 1.50),
    "claude-3-haiku": (0.25, 1.25, 0.03),
}

GEMINI: dict[str, Entry] = {
    "gemini-2.5-pro": (1.25, 10.00, 0.125),
    "gemini-2.5-flash": (0.30, 2.50, 0.03),
    "gemini-2.5-flash-lite": (0.10, 0.40, 0.01),
    "gemini-2.0-flash": (0.10, 0.40, 0.025),
    "gemini-2.0-flash-lite": (0.075, 0.30, None),
    "gemini-1.5-pro": (1.25, 5.00, 0.3125),
    "gemini-1.5-flash": (0.075, 0.30, 0.01875),
    "text-embedding-004": (0.0, 0.0, None),
    "gemini-embedding-001": (0.15, 0.0, None),
}

MISTRAL: dict[str, Entry] = {
    "mistral-large": (2.00, 6.00, None),
    "mistral-medium": (0.40, 2.00, None),
    "mistral-small": (0.10, 0.30, None),
    "magistral-medium": (2.00, 5.00, None),
    "magistral-small": (0.50, 1.50, None),
    "codestral": (0.30, 0.90, None),
    "devstral-small": (0.10, 0.30, None),
    "pixtral-large": (2.00, 6.00, None),
    "ministral-8b": (0.10, 0.10, None),
    "ministral-3b": (0.04, 0.04, None),
    "open-mistral-nemo": (0.15, 0.15, None),
    "mistral-embed": (0.10, 0.0, None),
}

# Bedrock model ids (`anthropic.claude-3-5-sonnet-20240620-v1:0`); a cross-region inference profile's
# `us.` / `eu.` / `apac.` / `global.` prefix is dropped before the lookup.
BEDROCK: dict[str, Entry] = {
    "anthropic.claude-opus-4-5": (5.00, 25.00, 0.50),
    "anthropic.claude-opus-4-1": (15.00, 75.00, 1.50),
    "anthropic.claude-opus-4": (15.00, 75.00, 1.50),
    "anthropic.claude-sonnet-4": (3.00, 15.00, 0.30),
    "anthropic.claude-3-7-sonnet": (3.00, 15.00, 0.30),
    "anthropic.claude-3-5-sonnet": (3.00, 15.00, 0.30),
    "anthropic.claude-haiku-4-5": (1.00, 5.00, 0.10),
    "anthropic.claude-3-5-haiku": (0.80, 4.00, 0.08),
    "anthropic.claude-3-haiku": (0.25, 1.25, None),
    "amazon.nova-premier": (2.50, 12.50, 0.625),
    "amazon.nova-pro": (0.80, 3.20, 0.20),
    "amazon.nova-lite": (0.06, 0.24, 0.015),
    "amazon.nova-micro": (0.035, 0.14, 0.00875),
    "amazon.titan-embed-text-v2": (0.02, 0.0, None),
    "meta.llama3-3-70b-instruct": (0.72, 0.72, None),
    "meta.llama3-1-405b-instruct": (2.40, 2.40, None),
    "meta.llama3-1-70b-instruct": (0.72, 0.72, None),
    "meta.llama3-1-8b-instruct": (0.22, 0.22, None),
    "mistral.mistral-large-2407": (2.00, 6.00, None),
    "mistral.mistral-large": (4.00, 12.00, None),
    "mistral.mistral-small": (1.00, 3.00, None),
    "cohere.command-r-plus": (3.00, 15.00, None),
    "cohere.command-r": (0.50, 1.50, None),
}

# Provider kind (config `providers[].kind`) → the vendor table its model names are looked up in.
# Kinds absent here (ollama, tgi, triton, echo, …) have no list price: local deployments are free
# unless their config gives token prices or GPU-time pricing.
TABLES: dict[str, dict[str, Entry]] = {
    "openai": OPENAI,
    "azure": OPENAI,
    "anthropic": ANTHROPIC,
    "gemini": GEMINI,
    "mistral": MISTRAL,
    "bedrock": BEDROCK,
}
BEDROCK_REGION_PREFIXES = ("us.", "eu.", "apac.", "global.", "us-gov.", "jp.", "au.", "ca.")
