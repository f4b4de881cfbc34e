"""Upstream answers that another model may not give: "the context is too long" and "refused under the
content policy", recognised in each provider's own words so that `context_fallbacks` and
`content_policy_fallbacks` can take the request elsewhere.

The shapes, as the providers send them:

- OpenAI and Azure: 400 `{"error": {"code": "context_length_exceeded", "message": "This model's
  maximum context length is 8192 tokens. However, your messages resulted in …"}}`; vLLM, SGLang,
  DeepSeek and Mistral say "maximum context length" too.
- Anthropic: 400 `invalid_request_error` "prompt is too long: 208310 tokens > 200000 maximum" or
  "input length and `max_tokens` exceed context limit: 197463 + 8192 > 200000, …".
- Gemini: 400 INVALID_ARGUMENT "The input token count (1200293) exceeds the maximum number of tokens
  allowed (1048576)."; Bedrock: ValidationException "Input is too long for requested model.";
  TGI: 422 "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8192. …";
  llama.cpp: "the request exceeds the available context size" (`exceed_context_size_error`);
  Cohere: "too many tokens: …".
- Content policy: Azure's 400 `code: content_filter` with `innererror.code:
  ResponsibleAIPolicyViolation` ("… triggering Azure OpenAI's content management policy …"),
  OpenAI's `content_policy_violation` and reasoning models' `invalid_prompt` ("… flagged as
  potentially violating our usage policy"); and, non-streamed, a 200 whose every choice finished with
  `content_filter` (how the providers map Azure's filter, Anthropic's `refusal`, Gemini's SAFETY
  blocks, Bedrock guardrails and Cohere's ERROR_TOXIC into the hub format).
"""

from __future__ import annotations

import msgspec

CONTEXT = "context"
CONTENT_POLICY = "content_policy"
# Statuses a refusal may come with (TGI's validation errors are 422).
REFUSAL_STATUSES = frozenset((400, 413, 422))

_CONTEXT_CODES = frozenset(("context_length_exceeded", "exceed_context_size_error"))
_CONTEXT_PHRASES = (
    "maximum context length",
    "context length exceeded",
    "context_length_exceeded",
    "prompt is too long",
    "exceed context limit",
    "exceeds the maximum number of tokens allowed",
    "input is too long",
    "exceeds the available context size",
    "`inputs` tokens + `max_new_tokens` must be",
    "too many tokens",
    "exceeds the context window",
)
_POLICY_CODES = frozenset(("content_filter", "content_policy_violation", "invalid_prompt"))
_POLICY_PHRASES = (
    "content management policy",
    "content policy",
    "usage policy",
    "safety system",
    "responsibleaipolicyviolation",
)


def refusal_of(status: int, code: str | None, message: str, body: bytes) -> str | None:
    """CONTEXT or CONTENT_POLICY for an error answer (its status, its OpenAI-vocabulary code and
    message as the provider decoded them, and the raw body), else None."""
    if status not in REFUSAL_STATUSES:
        return None
    if code in _CONTEXT_CODES:
        return CONTEXT
    if code in _POLICY_CODES or b"ResponsibleAIPolicyViolation" in body:
        return CONTENT_POLICY
    text = message.lower()
    if any(phrase in text for phrase in _CONTEXT_PHRASES):
        return CONTEXT
    if any(phrase in text for phrase in _POLICY_PHRASES):
        return CONTENT_POLICY
    return None


class _Choice(msgspec.Struct):
    finish_reason: str | None = None


class _Completion(msgspec.Struct):
    choices: list[_Choice] = []


_completion_decoder = msgspec.json.Decoder(_Completion)


def filtered(body: bytes) -> bool:
    """Whether a hub-format (OpenAI) chat.completion body was cut by a content filter: every choice
    finished with `content_filter` (one filtered choice among good ones is still an answer)."""
    if b'"content_filter"' not in body:
        return False
    try:
        choices = _completion_decoder.decode(body).choices
    except msgspec.DecodeError:
        return False
    return bool(choices) and all(choice.finish_reason == "content_filter" for choice in choices)
