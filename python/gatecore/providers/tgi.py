"""Hugging Face Text Generation Inference, native API: `POST {base_url}/generate` and
`/generate_stream` (SSE: `{"token": {...}, "generated_text", "details"}` per token).

`/v1/completions` sends the prompt as `inputs`; `/v1/chat/completions` renders the messages with the
provider's `chat_template` (hub_chat_to_prompt.py). Sampling goes in `parameters` (max_tokens →
`max_new_tokens`, stop → `stop`, response_format json_schema → `grammar`); finish reasons
eos_token/stop_sequence → stop, length → length. TGI reports generated tokens (and, in streams, the
input length); a prompt count it does not report is counted by the gateway with the provider's
tokenizer.
"""

from __future__ import annotations

from typing import Any

from gatecore.errors import GatewayError, InvalidRequest, UpstreamError, UpstreamProtocolError
from gatecore.providers.base import StreamDecoder
from gatecore.providers.from_hub_request import (
    JsonObject,
    max_tokens_of,
    n_of,
    reject_set,
    response_format_of,
    stop_sequences_of,
    untranslatable,
)
from gatecore.providers.hub_chat_to_prompt import chat_turns, render_prompt
from gatecore.providers.json_provider import PromptJsonProvider
from gatecore.providers.sse_events import SseEventSplitter
from gatecore.providers.to_hub_bodies import (
    TextChunkWriter,
    decode_json,
    stream_error,
)
from gatecore.providers.to_hub_chunks import DONE, ChunkWriter, usage_object
from gatecore.providers.upstream_errors import openai_error_type
from gatecore.request import CHAT, COMPLETIONS, RequestContext

KIND = "tgi"
_UNSUPPORTED: dict[str, tuple[object, ...]] = {"logit_bias": ({},), "logprobs": (False,), "audio": ()}
_SAMPLING = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed"}
FINISH_REASONS = {"length": "length", "eos_token": "stop", "stop_sequence": "stop"}


def prompt_of(ctx: RequestContext, doc: JsonObject, template: str) -> str:
    """The prompt text: the completions `prompt`, or the chat messages rendered."""
    if ctx.endpoint.hub is COMPLETIONS:
        prompt = doc.get("prompt")
        if not isinstance(prompt, str):
            raise untranslatable("prompt", KIND, "one string prompt per request")
        return prompt
    if ctx.endpoint.hub is not CHAT:
        raise InvalidRequest(
            f"The {ctx.endpoint.name} endpoint is not available for this model (provider kind '{KIND}').",
            code="unsupported_endpoint",
            param="model",
        )
    return render_prompt(chat_turns(doc, KIND), template)


def build_generate(doc: JsonObject, prompt: str) -> JsonObject:
    n_of(doc, KIND)
    reject_set(doc, KIND, _UNSUPPORTED)
    parameters: JsonObject = {name: doc[f] for f, name in _SAMPLING.items() if doc.get(f) is not None}
    parameters["details"] = True
    if (max_tokens := max_tokens_of(doc)) is not None:
        parameters["max_new_tokens"] = max_tokens
    if (stop := stop_sequences_of(doc)) is not None:
        parameters["stop"] = stop
    if doc.get("frequency_penalty") is not None:
        parameters["frequency_penalty"] = doc["frequency_penalty"]
    kind, schema, _ = response_format_of(doc)
    if kind == "json_schema":
        parameters["grammar"] = {"type": "json", "value": schema}
    elif kind == "json_object":
        parameters["grammar"] = {"type": "json", "value": {"type": "object"}}
    return {"inputs": prompt, "parameters": parameters}


def finish_reason(details: object) -> str:
    reason = details.get("finish_reason") if isinstance(details, dict) else None
    return FINISH_REASONS.get(reason, "stop") if isinstance(reason, str) else "stop"


class TgiStreamDecoder:
    """TGI `/generate_stream` events → OpenAI chat or text-completion chunks."""

    def __init__(self, writer: ChunkWriter | TextChunkWriter, prompt_tokens: int):
        self.writer = writer
        self.prompt_tokens = prompt_tokens
        self.events = SseEventSplitter()
        self.ended = False

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(data) for _, data in self.events.feed(chunk) if data.strip())

    def _event(self, data: bytes) -> bytes:
        doc = decode_json(data, "an event")
        if "error" in doc:
            raise stream_error(doc["error"])
        token = doc.get("token")
        text = token.get("text") if isinstance(token, dict) and not token.get("special") else ""
        text = text if isinstance(text, str) else ""
        details = doc.get("details")
        writer = self.writer
        out: list[bytes] = []
        if isinstance(writer, ChunkWriter):
            if not writer.role_sent:
                out.append(writer.role())
            if text:
                out.append(writer.text(text))
            if isinstance(details, dict):
                out.append(writer.finish(finish_reason(details)))
        elif text or isinstance(details, dict):
            out.append(writer.text(text, finish_reason(details) if isinstance(details, dict) else None))
        if isinstance(details, dict):
            self.ended = True
            prompt = details.get("input_length")
            generated = details.get("generated_tokens")
            out.append(
                writer.usage(
                    usage_object(
                        prompt if isinstance(prompt, int) else self.prompt_tokens,
                        generated if isinstance(generated, int) else 0,
                    )
                )
            )
        return b"".join(out)

    def finish(self) -> bytes:
        if self.events.pending:
            raise UpstreamProtocolError("The upstream stream ended in the middle of an event.")
        if not self.ended:
            raise UpstreamProtocolError("The upstream stream ended before its final event (with details).")
        return DONE


class TgiProvider(PromptJsonProvider):
    """TGI's native `/generate` and `/generate_stream`."""

    kind = KIND

    def prompt(self, ctx: RequestContext, doc: JsonObject) -> str:
        return prompt_of(ctx, doc, self.template)

    def generate(self, doc: JsonObject, prompt: str, model: str, stream: bool) -> tuple[str, JsonObject]:
        return "/generate_stream" if stream else "/generate", build_generate(doc, prompt)

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return TgiStreamDecoder(self.writer(ctx), self.prompt_tokens(ctx))

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        doc = decode_json(body, "a response")
        if isinstance(doc.get("generated_text"), str):
            text: str = doc["generated_text"]
            details = doc.get("details")
        else:  # some TGI versions answer /generate with a one-element array
            raise UpstreamProtocolError("The upstream response has no generated_text.")
        generated = details.get("generated_tokens") if isinstance(details, dict) else None
        usage = usage_object(self.prompt_tokens(ctx), generated if isinstance(generated, int) else 0)
        return self.completion_body(ctx, text, finish_reason(details), usage)

    def upstream_error(self, status: int, message: str, doc: dict[str, Any]) -> GatewayError:
        """TGI's `error_type` kept in the code; `overloaded` is a rate limit to the client."""
        error_type = doc.get("error_type")
        code = f"tgi_{error_type}" if isinstance(error_type, str) else "upstream_error"
        type_ = "rate_limit_error" if error_type == "overloaded" else openai_error_type(status)
        return UpstreamError(message, status=status, type_=type_, code=code)
