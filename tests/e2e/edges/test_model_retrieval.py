"""``GET /v1/models/{id}``: every listed model, the key's scope, unknown models, and the key checked first."""

from __future__ import annotations

import openai
import pytest

from .. import raw_http
from ..conftest import make_client
from ..gateway import STANDARD_MODELS, TEAM_KEY, TEAM_MODELS, Gateway
from .shared import BOGUS_KEY, assert_error, auth


def test_retrieve_model_sdk(client: openai.OpenAI) -> None:
    model = client.models.retrieve("gpt-test")
    assert model.id == "gpt-test"
    assert model.object == "model"
    assert isinstance(model.owned_by, str)
    assert isinstance(model.created, int)


@pytest.mark.parametrize("model", sorted(STANDARD_MODELS))
def test_retrieve_every_listed_model(gateway: Gateway, model: str) -> None:
    resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=auth())
    assert resp.status == 200, resp.body[:300]
    assert (resp.header("content-type") or "").startswith("application/json")
    obj = resp.json()
    assert obj["id"] == model
    assert obj["object"] == "model"


def test_retrieve_model_allowed_for_key(gateway: Gateway) -> None:
    with make_client(gateway, TEAM_KEY) as c:
        assert c.models.retrieve("gpt-test").id == "gpt-test"


@pytest.mark.parametrize("model", sorted(STANDARD_MODELS - TEAM_MODELS))
def test_retrieve_model_not_allowed_for_key_is_404(gateway: Gateway, model: str) -> None:
    """A model the key may not use does not exist for it."""
    resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=auth(TEAM_KEY))
    assert_error(resp, 404, "model_not_found")
    with make_client(gateway, TEAM_KEY) as c, pytest.raises(openai.NotFoundError) as info:
        c.models.retrieve(model)
    assert info.value.code == "model_not_found"


@pytest.mark.parametrize("model", ["no-such-model", "upstream-model-1", "GPT-TEST", "gpt-test-2"])
def test_retrieve_unknown_model_is_404(gateway: Gateway, model: str) -> None:
    resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=auth())
    assert_error(resp, 404, "model_not_found")


def test_retrieve_unknown_model_sdk(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("no-such-model")
    assert info.value.status_code == 404


@pytest.mark.parametrize(
    ("headers", "code"),
    [([], "missing_api_key"), (auth(BOGUS_KEY), "invalid_api_key")],
    ids=["no-key", "bogus-key"],
)
def test_retrieve_model_needs_a_valid_key(
    gateway: Gateway, headers: list[tuple[str, str]], code: str
) -> None:
    """401 before anything about models is revealed, for real and made-up models alike."""
    for model in ("gpt-test", "no-such-model"):
        resp = raw_http.request(gateway.port, "GET", f"/v1/models/{model}", headers=headers)
        assert_error(resp, 401, code)
