"""NVIDIA Triton's generate extension (KServe v2): `POST {base_url}/v2/models/{model}/generate` and
`/generate_stream` (SSE, one `{"text_output": ...}` object per event, `{"error": ...}` on failure).

The request is `{"text_input", "max_tokens", "stream", "parameters": {...}}`: the prompt is the
completions `prompt` or the chat messages rendered with `chat_template` (hub_chat_to_prompt.py); top-level
`max_tokens` and `stream` reach the model as inputs (TensorRT-LLM's ensemble names), sampling goes in
`parameters` (temperature, top_p, top_k, seed: scalars, as the extension requires), and stop strings
go as the top-level `stop_words` input (a list cannot be a parameter). Triton reports neither a
finish reason nor usage: the finish reason is `stop`, and usage is counted by the gateway with the
provider's tokenizer.
"""

from __future__ import annotations

from urllib.parse import quote

from gatecore._core import count_tokens
from gatecore.errors import UpstreamProtocolError
from gatecore.providers.base import StreamDecoder
from gatecore.providers.from_hub_request import (
    JsonObject,
    max_tokens_of,
    n_of,
    reject_set,
    stop_sequences_of,
)
from gatecore.providers.json_provider import PromptJsonProvider
from gatecore.providers.sse_events import SseEventSplitter
from gatecore.providers.tgi import prompt_of
from gatecore.providers.to_hub_bodies import (
    TextChunkWriter,
    decode_json,
    stream_error,
)
from gatecore.providers.to_hub_chunks import DONE, ChunkWriter, usage_object
from gatecore.request import RequestContext

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


class TritonProvider(PromptJsonProvider):
    """Triton's generate extension."""

    kind = KIND

    def prompt(self, ctx: RequestContext, doc: JsonObject) -> str:
        return prompt_of(ctx, doc, self.template)

    def generate(self, doc: JsonObject, prompt: str, model: str, stream: bool) -> tuple[str, JsonObject]:
        action = "generate_stream" if stream else "generate"
        return f"/v2/models/{quote(model, safe='')}/{action}", build_generate(doc, prompt, stream)

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return TritonStreamDecoder(self.writer(ctx), self.prompt_tokens(ctx), self.tokenizer)

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        doc = decode_json(body, "a response")
        text = doc.get("text_output")
        if not isinstance(text, str):
            raise UpstreamProtocolError("The upstream response has no text_output.")
        usage = usage_object(self.prompt_tokens(ctx), count_tokens(text, self.tokenizer))
        return self.completion_body(ctx, text, "stop", usage)
