"""Azure OpenAI: OpenAI's wire format at a deployment URL.

POST {base_url}/openai/deployments/{deployment}{/chat/completions|/completions|/embeddings}
?api-version={providers[].api_version, default 2024-10-21}, authenticated with `api-key`. The
deployment is the model name a deployment config gives (`models[].deployments[].model`). Bodies and
streams are OpenAI's, so they pass through as with the `openai` kind (finish_reason content_filter
included). Errors are re-rendered in OpenAI's shape: Azure's carry no `type` and its content-filter
rejections (400, code content_filter / innererror ResponsibleAIPolicyViolation) become an OpenAI
error with code `content_filter`.
"""

from __future__ import annotations

from urllib.parse import quote

import msgspec

from gatecore.config.schema import ProviderConfig
from gatecore.errors import GatewayError, UpstreamError
from gatecore.providers.openai_compat import OpenAICompatProvider
from gatecore.providers.upstream_errors import json_object, openai_error_type, unshaped_error
from gatecore.request import RequestContext
from gatecore.request.context import COMPACT
from gatecore.upstream.pool import PoolSet

API_VERSION = "2024-10-21"


class AzureOpenAIProvider(OpenAICompatProvider):
    """An Azure OpenAI resource; `base_url` is the resource endpoint (https://<name>.openai.azure.com)."""

    def __init__(self, config: ProviderConfig, pools: PoolSet):
        headers = dict(config.headers)
        if config.api_key:
            headers["api-key"] = config.api_key
        super().__init__(msgspec.structs.replace(config, api_key=None, headers=headers), pools)
        self.api_version = quote(config.api_version or API_VERSION, safe="")
        self._deployment_heads: dict[tuple[str, str], bytes] = {}
        self._azure_responses_head = (
            f"POST {self._base_path}/openai/v1/responses HTTP/1.1\r\n{self._lines}\r\n".encode("latin-1")
        )
        self._azure_compact_head = (
            f"POST {self._base_path}/openai/v1/responses/compact HTTP/1.1\r\n{self._lines}\r\n".encode(
                "latin-1"
            )
        )

    def request_head(self, ctx: RequestContext, upstream_model: str) -> bytes:
        if ctx.native_body is not None and self.responses_native:
            # The Responses API is not per deployment: the v1 path, the deployment named as `model`.
            return self._azure_responses_head
        if ctx.endpoint is COMPACT:  # the Responses API's compaction: the v1 path too
            return self._azure_compact_head
        key = (ctx.endpoint.hub.name, upstream_model)
        head = self._deployment_heads.get(key)
        if head is None:
            path = (
                f"{self._base_path}/openai/deployments/{quote(upstream_model, safe='')}"
                f"{ctx.endpoint.upstream_path}?api-version={self.api_version}"
            )
            head = f"POST {path} HTTP/1.1\r\n{self._lines}\r\n".encode("latin-1")
            if len(self._deployment_heads) < 1024:  # a wildcard model could name any deployment
                self._deployment_heads[key] = head
        return head

    def decode_error(self, status: int, body: bytes) -> GatewayError:
        doc = json_object(body)
        error = doc.get("error") if doc is not None else None
        if not isinstance(error, dict) or not isinstance(error.get("message"), str):
            return unshaped_error(status, body)
        inner = error.get("innererror")
        inner_code = inner.get("code") if isinstance(inner, dict) else None
        code = error.get("code")
        param = error.get("param") if isinstance(error.get("param"), str) else None
        if code == "content_filter" or inner_code == "ResponsibleAIPolicyViolation":
            return UpstreamError(
                error["message"],
                status=status,
                type_="invalid_request_error",
                code="content_filter",
                param=param,
            )
        type_ = error.get("type") if isinstance(error.get("type"), str) else openai_error_type(status)
        return UpstreamError(
            error["message"],
            status=status,
            type_=type_,
            code=str(code) if code is not None else None,
            param=param,
        )
