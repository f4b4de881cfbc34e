"""Amazon Bedrock's Converse API: `POST {base_url}/model/{modelId}/converse` and `/converse-stream`.

Requests are signed with SigV4 (service `bedrock`; sigv4.py). Streams arrive in the AWS event-stream
binary framing, decoded in Rust (`_core.EventStreamDecoder`, CRCs checked) into ConverseStream events
(messageStart, contentBlockStart/Delta/Stop, messageStop, metadata) that become OpenAI chunks here;
an exception message (throttlingException, modelStreamErrorException, ...) ends the client's stream
with an error event. Errors are `{"message"}` bodies whose type is the `x-amzn-ErrorType` header.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson

from gatecore._core import EventStreamDecoder
from gatecore.config.schema import ProviderConfig, bedrock_region
from gatecore.errors import GatewayError, UpstreamError, UpstreamProtocolError
from gatecore.providers.base import StreamDecoder, require_chat
from gatecore.providers.bedrock_response_to_hub import converse_usage, decode_converse, finish_reason
from gatecore.providers.forward_headers import ForwardHeaders
from gatecore.providers.from_hub_request import load_chat
from gatecore.providers.hub_to_bedrock_request import KIND, add_betas, build_converse
from gatecore.providers.json_post import JsonPost
from gatecore.providers.sigv4 import SigV4Signer
from gatecore.providers.to_hub_bodies import decode_json, stream_error
from gatecore.providers.to_hub_chunks import DONE, ChunkWriter
from gatecore.providers.upstream_errors import json_object, openai_error_type, unshaped_error
from gatecore.request import RequestContext
from gatecore.upstream.pool import Origin, PoolSet
from gatecore.upstream.response import UpstreamResponse, WholeAnswer
from gatecore.upstream.timeouts import Timeouts

MAX_ERROR_BYTES = 1024 * 1024
# Error types whose OpenAI type differs from what their status alone says.
_ERROR_TYPES = {
    "ThrottlingException": "rate_limit_error",
    "ServiceQuotaExceededException": "rate_limit_error",
    "ModelNotReadyException": "rate_limit_error",
    "AccessDeniedException": "permission_error",
    "UnrecognizedClientException": "authentication_error",
    "InvalidSignatureException": "authentication_error",
    "ExpiredTokenException": "authentication_error",
    "ModelTimeoutException": "timeout_error",
    "ModelErrorException": "api_error",  # 424: the model failed while processing
}
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def error_code(error_type: str) -> str:
    """`ThrottlingException` → `throttling_exception` (a stable slug)."""
    return _CAMEL.sub("_", error_type).lower()


class ConverseStreamDecoder:
    """ConverseStream event-stream bytes → OpenAI chunks, event by event."""

    def __init__(self, writer: ChunkWriter):
        self.writer = writer
        self.frames = EventStreamDecoder()
        self.tools: dict[int, int] = {}  # content block index → OpenAI tool call index
        self.stopped = False

    def feed(self, chunk: bytes) -> bytes:
        try:
            messages = self.frames.feed(chunk)
        except ValueError as exc:
            raise UpstreamProtocolError(f"The upstream stream is malformed: {exc}.") from None
        return b"".join(self._message(*m) for m in messages)

    def _message(self, message_type: str, kind: str, payload: bytes) -> bytes:
        if message_type in ("exception", "error"):
            doc = json_object(payload)
            text = doc.get("message") if doc else payload[:500].decode("utf-8", "replace")
            raise stream_error(f"{kind}: {text}")
        doc = decode_json(payload, f"a {kind or 'stream'} event")
        writer = self.writer
        out = [] if writer.role_sent else [writer.role()]
        if kind == "contentBlockStart":
            use = (doc.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                index = self.tools[_block(doc)] = len(self.tools)
                out.append(
                    writer.tool_call_start(index, str(use.get("toolUseId", "")), str(use.get("name", "")))
                )
        elif kind == "contentBlockDelta":
            delta = doc.get("delta") or {}
            if isinstance(delta.get("text"), str):
                out.append(writer.text(delta["text"]))
            elif isinstance(delta.get("toolUse"), dict):
                call_index = self.tools.get(_block(doc))
                fragment = delta["toolUse"].get("input")
                if call_index is None or not isinstance(fragment, str):
                    raise UpstreamProtocolError("The upstream sent tool input outside a tool block.")
                out.append(writer.tool_call_arguments(call_index, fragment))
            elif isinstance(delta.get("reasoningContent"), dict):
                text = delta["reasoningContent"].get("text")
                if isinstance(text, str):
                    out.append(writer.reasoning(text))
        elif kind == "messageStop":
            self.stopped = True
            out.append(writer.finish(finish_reason(doc.get("stopReason"))))
        elif kind == "metadata":
            usage = converse_usage(doc.get("usage"))
            if usage is not None:
                out.append(writer.usage(usage))
        return b"".join(out)

    def finish(self) -> bytes:
        try:
            self.frames.finish()
        except ValueError as exc:
            raise UpstreamProtocolError(f"The upstream stream is malformed: {exc}.") from None
        if not self.stopped:
            raise UpstreamProtocolError("The upstream stream ended before its messageStop event.")
        return DONE


def _block(doc: dict[str, Any]) -> int:
    index = doc.get("contentBlockIndex")
    return index if isinstance(index, int) else 0


class BedrockProvider:
    """Bedrock Converse / ConverseStream with SigV4 signing."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        region = bedrock_region(config)
        assert region and config.aws_access_key_id and config.aws_secret_access_key
        self.name = config.name
        self.tokenizer = config.tokenizer
        base_url = config.base_url or f"https://bedrock-runtime.{region}.amazonaws.com"
        self.signer = SigV4Signer(
            config.aws_access_key_id,
            config.aws_secret_access_key,
            config.aws_session_token,
            region,
            "bedrock",
        )
        self.post = JsonPost(base_url, pools, dict(config.headers))
        self.host = Origin(base_url).host_header
        # `forward_headers: [anthropic-beta]`: the client's betas go to a Claude model on Bedrock in
        # the body (`additionalModelRequestFields.anthropic_beta`), where Bedrock reads them. Opt-in:
        # Bedrock refuses betas it does not know, and clients such as Claude Code send several.
        forward = ForwardHeaders(name for name in config.forward_headers if name.lower() == "anthropic-beta")
        self.betas = forward if forward else None

    async def send(self, ctx: RequestContext, upstream_model: str, timeouts: Timeouts) -> UpstreamResponse:
        require_chat(ctx, KIND)
        converse = build_converse(load_chat(ctx.body))
        if self.betas is not None:
            add_betas(converse, self.betas.values(ctx))
        body = orjson.dumps(converse)
        action = "converse-stream" if ctx.stream else "converse"
        path = f"/model/{quote(upstream_model, safe='')}/{action}"
        signed = [("host", self.host), ("content-type", "application/json")]
        extra = self.signer.sign("POST", self.post.base_path + path, "", signed, body)
        response = await self.post.send(ctx, path, body, timeouts, extra)
        if response.status >= 400:
            # The error's type is in a header decode_error does not see: fold it into the body.
            error_type = (response.header(b"x-amzn-errortype") or b"").decode("latin-1").split(":")[0]
            retry_after = response.header(b"retry-after")  # headers first: read_all frees the head
            raw = await response.read_all(MAX_ERROR_BYTES)
            doc = json_object(raw)
            if doc is not None and error_type:
                raw = orjson.dumps({**doc, "__type": error_type})
            kept = [(b"retry-after", retry_after)] if retry_after is not None else []
            return WholeAnswer(response.status, response.content_type, raw, kept)
        return response

    def is_stream(self, ctx: RequestContext, response: UpstreamResponse) -> bool:
        # Any 2xx answer to a stream request goes through the event-stream decoder: a body in another
        # format fails its CRC checks and ends the client's stream with an error event.
        return ctx.stream and response.status < 400

    def stream_decoder(self, ctx: RequestContext) -> StreamDecoder | None:
        return ConverseStreamDecoder(ChunkWriter(f"chatcmpl-{ctx.request_id}", ctx.client_model))

    def decode_body(self, ctx: RequestContext, body: bytes) -> bytes:
        return decode_converse(
            decode_json(body, "a response"), f"chatcmpl-{ctx.request_id}", ctx.client_model
        )

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        doc = json_object(body)
        message = (doc.get("message") or doc.get("Message")) if doc else None
        if not isinstance(message, str):
            return unshaped_error(status, body)
        error_type = doc.get("__type") if doc else None
        if isinstance(error_type, str) and error_type:
            type_ = _ERROR_TYPES.get(error_type, openai_error_type(status))
            return UpstreamError(message, status=status, type_=type_, code=error_code(error_type))
        return UpstreamError(message, status=status, type_=openai_error_type(status), code="upstream_error")
