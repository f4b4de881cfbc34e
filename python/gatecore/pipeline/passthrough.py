"""The decode stages of the rest of OpenAI's surface, passed through to OpenAI-compatible upstreams:
`/v1/rerank` (the Cohere / Jina / vLLM / TEI shape), `/v1/moderations`, `/v1/audio/speech`,
`/v1/audio/transcriptions` (multipart), `/v1/images/generations` and the Responses API's
`/v1/responses/compact`.

Each reads only what routing, limits and the ledger need (the model) and bounds the client's numbers
and strings; the body goes upstream as the client sent it, its model rewritten by the provider, and
the answer (JSON, or audio bytes) comes back as the upstream sent it. Providers that do not speak
OpenAI's format answer 400 naming the endpoint (providers/base.py `require_chat`).
`model` may be left out of moderations and image requests, as OpenAI's reference allows: the
request is routed by OpenAI's default model name then, which must be configured.
"""

from __future__ import annotations

from typing import Any

import msgspec

from gatecore.api.multipart import boundary_of, text_field
from gatecore.errors import InvalidRequest
from gatecore.pipeline.decode import bounded_model, decode_fields
from gatecore.request import RequestContext

MAX_DOCUMENTS = 10_000
MAX_SPEECH_CHARS = 4096  # OpenAI's bound on `input`
MAX_IMAGES = 10  # OpenAI's bound on `n`
DEFAULT_MODERATION_MODEL = "omni-moderation-latest"
DEFAULT_IMAGE_MODEL = "dall-e-2"


class RerankFields(msgspec.Struct):
    model: str
    query: str
    documents: list[msgspec.Raw]
    top_n: int | None = None


class ModerationFields(msgspec.Struct):
    input: msgspec.Raw
    model: str = DEFAULT_MODERATION_MODEL


class SpeechFields(msgspec.Struct):
    model: str
    input: str
    voice: msgspec.Raw


class CompactFields(msgspec.Struct):
    model: str
    previous_response_id: str | None = None


class ImageFields(msgspec.Struct):
    prompt: str
    model: str = DEFAULT_IMAGE_MODEL
    n: int | None = None


class DecodeJsonPassthrough:
    """The decode stage of a JSON pass-through endpoint: its fields, each within its bounds."""

    __slots__ = ("decoder",)

    def __init__(self, fields: type[Any]):
        self.decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(fields)

    def __call__(self, ctx: RequestContext) -> None:
        fields = decode_fields(ctx, self.decoder)
        if isinstance(fields, RerankFields):
            if not 0 < len(fields.documents) <= MAX_DOCUMENTS:
                raise InvalidRequest(
                    f"'documents' must hold 1-{MAX_DOCUMENTS} documents.",
                    code="invalid_value",
                    param="documents",
                )
            if fields.top_n is not None and not 1 <= fields.top_n <= MAX_DOCUMENTS:
                raise InvalidRequest(
                    f"'top_n' must be between 1 and {MAX_DOCUMENTS}.", code="invalid_value", param="top_n"
                )
        elif isinstance(fields, SpeechFields):
            if not 0 < len(fields.input) <= MAX_SPEECH_CHARS:
                raise InvalidRequest(
                    f"'input' must be 1-{MAX_SPEECH_CHARS} characters.", code="invalid_value", param="input"
                )
        elif isinstance(fields, CompactFields) and fields.previous_response_id is not None:
            # gatecore's response ids are its own (stored_responses/), unknown to the upstream.
            raise InvalidRequest(
                "'previous_response_id' cannot be compacted upstream; send the conversation as 'input'.",
                code="unsupported_parameter",
                param="previous_response_id",
            )
        elif isinstance(fields, ImageFields) and fields.n is not None and not 1 <= fields.n <= MAX_IMAGES:
            raise InvalidRequest(f"'n' must be between 1 and {MAX_IMAGES}.", code="invalid_value", param="n")


def decode_transcription(ctx: RequestContext) -> None:
    """`/v1/audio/transcriptions`' decode stage: the `model` field of the multipart form."""
    headers = ctx.headers
    boundary = boundary_of(headers.get("content-type") if headers is not None else None)
    model = text_field(ctx.body, boundary, "model")
    if model is None:
        raise InvalidRequest("The form needs a 'model' field.", code="missing_model", param="model")
    ctx.client_model = bounded_model(model)
