"""NVIDIA Triton's generate extension (KServe v2): `POST {base_url}/v2/models/{model}/generate` and
`/generate_stream` (SSE, one `{"text_output": ...}` object per event, `{"error": ...}` on failure).

The request is `{"text_input", "max_tokens", "stream", "parameters": {...}}`: the prompt is the
completions `prompt` or the chat messages rendered with `chat_template` (chat_prompt.py); top-level
`max_tokens` and `stream` reach the model as inputs (TensorRT-LLM's ensemble names), sampling goes in
`parameters` (temperature, top_p, top_k, seed: scalars, as the extension requires), and stop strings
go as the top-level `stop_words` input (a list cannot be a parameter). Triton reports neither a
finish reason nor usage: the finish reason is `stop`, and usage is counted by the gateway with the
provider's tokenizer.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from gatecore._core import count_tokens
from gatecore.config.schema import ProviderConfig
from gatecore.errors import GatewayError, UpstreamError, UpstreamProtocolError
from gatecore.providers.base import StreamDecoder
from gatecore.providers.chat_request import (
    JsonObject,
    load_chat,
    max_tokens_of,
    n_of,
    reject_set,
    stop_sequences_of,
)
from gatecore.providers.completion_bodies import (
    TextChunkWriter,
    chat_completion_body,
    decode_json,
    stream_error,
    text_completion_body,
)
from gatecore.providers.json_post import JsonPost, bearer_headers
from gatecore.providers.openai_chunks import DONE, ChunkWriter, usage_object
from gatecore.providers.sse_events import SseEventSplitter
from gatecore.providers.tgi import prompt_of
from gatecore.providers.upstream_errors import json_object, openai_error_type, unshaped_error
from gatecore.request import CHAT, RequestContext
from gatecore.upstream.pool import PoolSet
from gatecore.upstream.response import UpstreamResponse
from gatecore.upstream.timeouts import Timeouts

KIND = "triton"
_UNSUPPORTED: dict[str, tuple[object, ...]] = {
    "logit_bias": ({},),
    "logprobs": (False,),
    "response_format": ({"type": "text"},),
    "audio": (),
}
_PARAMETERS = {"temperature": "temperature", "top_p": "top_p", "top_k": "top_k", "seed": "seed"}


def build_generate(doc: JsonObject, prompt: str, stream: bool) -> JsonObject:
    n_of(doc, KIND)
    reject_set(doc, KIND, _UNSUPPORTED)
    body: JsonObject = {"text_input": prompt, "stream": stream}
    if (max_tokens := max_tokens_of(doc)) is not None:
        body["max_tokens"] = max_tokens
    if (stop := stop_sequences_of(doc)) is not None:
        body["stop_words"] = stop
    parameters = {name: doc[f] for f, name in _PARAMETERS.items() if doc.get(f) is not None}
    if parameters:
        body["parameters"] = parameters
    return body


class TritonStreamDecoder:
    """Triton `/generate_stream` events → OpenAI chunks; the end of the stream is the end of the answer."""

    def __init__(self, writer: ChunkWriter | TextChunkWriter, prompt_tokens: int, tokenizer: str):
        self.writer = writer
        self.prompt_tokens = prompt_tokens
        self.tokenizer = tokenizer
        self.events = SseEventSplitter()
        self.output: list[str] = []

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(data) for _, data in self.events.feed(chunk) if data.strip())

    def _event(self, data: bytes) -> bytes:
        doc = decode_json(data, "an event")
        if "error" in doc:
            raise stream_error(doc["error"])
        text = doc.get("text_output")
        if not isinstance(text, str):
            raise UpstreamProtocolError("The upstream sent an event without text_output.")
        self.output.append(text)
        writer = self.writer
        if isinstance(writer, ChunkWriter):
            return (b"" if writer.role_sent else writer.role()) + (writer.text(text) if text else b"")
        return writer.text(text) if text else b""

    def finish(self) -> bytes:
        if self.events.pending:
            raise UpstreamProtocolError("The upstream stream ended in the middle of an event.")
        writer = self.writer
        completion = count_tokens("".join(self.output), self.tokenizer)
        usage = writer.usage(usage_object(self.prompt_tokens, completion))
        if isinstance(writer, ChunkWriter):
            head = b"" if writer.role_sent else writer.role()
            return head + writer.finish("stop") + usage + DONE
        return writer.text("", "stop") + usage + DONE


class TritonProvider:
    """Triton's generate extension."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        assert config.base_url is not None
        self.name = config.name
        self.tokenizer = config.tokenizer
        self.template = config.chat_template
        self.post = JsonPost(config.base_url, pools, bearer_headers(config))

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        doc = load_chat(ctx.body)
        body = orjson.dumps(build_generate(doc, prompt_of(ctx, doc, self.template), ctx.stream))
        action = "generate_stream" if ctx.stream else "generate"
        return await self.post.send(
            ctx, f"/v2/models/{quote(upstream_model, safe='')}/{action}", body, timeouts
        )

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        return ctx.stream and response.status < 400

    def _prompt_tokens(self, ctx: RequestContext) -> int:
        return count_tokens(prompt_of(ctx, load_chat(ctx.body), self.template), self.tokenizer)

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        rid, model = ctx.request_id, ctx.client_model
        writer = (
            ChunkWriter(f"chatcmpl-{rid}", model)
            if ctx.endpoint is CHAT
            else TextChunkWriter(f"cmpl-{rid}", model)
        )
        return TritonStreamDecoder(writer, self._prompt_tokens(ctx), self.tokenizer)

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        doc = decode_json(body, "a response")
        text = doc.get("text_output")
        if not isinstance(text, str):
            raise UpstreamProtocolError("The upstream response has no text_output.")
        usage = usage_object(self._prompt_tokens(ctx), count_tokens(text, self.tokenizer))
        if ctx.endpoint is CHAT:
            return chat_completion_body(f"chatcmpl-{ctx.request_id}", ctx.client_model, text, "stop", usage)
        return text_completion_body(f"cmpl-{ctx.request_id}", ctx.client_model, text, "stop", usage)

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        doc = json_object(body)
        message = doc.get("error") if doc else None
        if not isinstance(message, str):
            return unshaped_error(status, body)
        return UpstreamError(message, status=status, type_=openai_error_type(status), code="upstream_error")
