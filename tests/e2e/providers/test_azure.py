"""The `azure` provider (deployment URL, api-key, api-version, content-filter errors) end to end with
the openai SDK: the shared conformance cases through this table, then what only Azure does."""

from __future__ import annotations

from ...upstreams.azure_mock import API_KEY, CONTENT_FILTER_MESSAGE, AzureMock
from ..gateway import GatewayFactory
from . import conformance as cf
from .harness import Setup
from .translated import post, provider_config

MODEL = "az/gpt4o-prod"
SENT = cf.Sent(
    path="/openai/deployments/gpt4o-prod/chat/completions",
    query="api-version=2024-10-21",
    headers={"api-key": API_KEY},
    no_headers=["authorization"],
)

SETUP = Setup(
    mock=AzureMock,
    providers=lambda mock: [
        {
            "name": "az",
            "kind": "azure",
            "base_url": mock.origin,
            "api_key": API_KEY,
            "api_version": "2024-10-21",
        }
    ],
    models={"az/*": ("az", "*")},
    secrets=(API_KEY,),
)


SUITE = cf.Suite(
    chat={
        MODEL: cf.Exchange(model=MODEL, reply="mock: hello there", usage=cf.Tokens(completion=3), sent=SENT)
    },
    stream={
        MODEL: cf.Exchange(model=MODEL, reply="mock: hello there", usage=cf.Tokens(completion=3), sent=SENT)
    },
    finish_reasons={"content_filter": cf.Finish(cf.named("az/d~finish=content_filter"), "content_filter")},
    upstream_errors={
        str(status): cf.UpstreamError(
            cf.named(f"az/d~status={status}"),
            status,
            {"type": otype, "code": str(status), "message": f"mock azure {status}"},
        )
        for status, otype in [
            (401, "authentication_error"),
            (404, "not_found_error"),
            (429, "rate_limit_error"),
            (500, "api_error"),
        ]
    }
    | {
        "content-filter": cf.UpstreamError(
            cf.named("az/d~content_filter"),
            400,
            {
                "message": CONTENT_FILTER_MESSAGE,
                "type": "invalid_request_error",
                "param": "prompt",
                "code": "content_filter",
            },
        )
    },
)
globals().update(SUITE.tests())


def test_wrong_key_is_401_without_leaking(mock: AzureMock, gateway_factory: GatewayFactory) -> None:
    gw = gateway_factory(
        provider_config(
            {"name": "az", "kind": "azure", "base_url": mock.origin, "api_key": "az-wrong-key-000"}, "az"
        )
    )
    resp = post(gw, {"model": "az/d", "messages": [{"role": "user", "content": "hello there"}]})
    assert resp.status == 401 and b"az-wrong-key-000" not in resp.body
