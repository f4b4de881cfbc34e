"""Wildcard model names (``up/*``): any model at the upstream, streams, bare prefixes, retrieval."""

from __future__ import annotations

import pytest

from ...upstreams.openai_mock import MockUpstream
from .. import raw_http
from ..conftest import make_client, new_request_id
from ..gateway import MASTER_KEY, UPSTREAM_KEY, Gateway
from .shared import CHAT, assert_error, auth, chat_body, user


@pytest.mark.parametrize(
    ("model", "upstream_model"),
    [("up/foo", "foo"), ("up/org/model-x", "org/model-x"), ("up/upstream-model-1", "upstream-model-1")],
)
def test_wildcard_model(
    edges_gateway: Gateway, upstream: MockUpstream, model: str, upstream_model: str
) -> None:
    rid = new_request_id()
    with make_client(edges_gateway) as c:
        raw = c.chat.completions.with_raw_response.create(
            model=model, messages=user("wild"), extra_headers={"x-request-id": rid}
        )
    completion = raw.parse()
    assert completion.model == model
    assert completion.choices[0].message.content == "mock: wild"
    assert raw.headers["x-gatecore-model"] == f"up/{upstream_model}"
    sent = upstream.wait_for(rid)
    assert sent.body_json["model"] == upstream_model
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"


def test_wildcard_model_stream(edges_gateway: Gateway, upstream: MockUpstream) -> None:
    rid = new_request_id()
    with make_client(edges_gateway) as c:
        stream = c.chat.completions.create(
            model="up/foo", messages=user("wild stream"), stream=True, extra_headers={"x-request-id": rid}
        )
        with stream:
            chunks = list(stream)
    assert {ch.model for ch in chunks} == {"up/foo"}
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks) == "mock: wild stream"
    assert upstream.wait_for(rid).body_json["model"] == "foo"


@pytest.mark.parametrize("model", ["up/", "up", "up*", "upx/foo", "/foo"])
def test_wildcard_prefix_alone_is_404(edges_gateway: Gateway, upstream: MockUpstream, model: str) -> None:
    rid = new_request_id()
    resp = raw_http.post_json(
        edges_gateway.port, CHAT, chat_body(model), MASTER_KEY, extra_headers={"x-request-id": rid}
    )
    assert_error(resp, 404, "model_not_found")
    assert not upstream.received(rid)


def test_wildcard_retrieve_model(edges_gateway: Gateway) -> None:
    resp = raw_http.request(edges_gateway.port, "GET", "/v1/models/up/foo", headers=auth())
    assert resp.status == 200, resp.body[:300]
    assert resp.json()["id"] == "up/foo"
    resp = raw_http.request(edges_gateway.port, "GET", "/v1/models/up/", headers=auth())
    assert_error(resp, 404, "model_not_found")


def test_wildcard_retrieve_model_sdk(edges_gateway: Gateway) -> None:
    """The SDK percent-encodes the id: ``GET /v1/models/up%2Ffoo`` is the model ``up/foo``."""
    with make_client(edges_gateway) as c:
        assert c.models.retrieve("up/foo").id == "up/foo"
