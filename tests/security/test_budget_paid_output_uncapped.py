"""Issue 17, finding 4 (the output half): a request without `max_tokens` under a hard budget reserved
`limits.default_max_tokens`' worth but asked the upstream for any length, and `n` was not counted:
one request could spend far past the budget. Now the output sent upstream is capped to what the
reservation pays for (`max_tokens` written into the body, `x-gatecore-max-tokens-capped` on the
answer), every choice counted; a client limit that fits is left alone."""

from __future__ import annotations

import uuid

import openai

from ..e2e.conftest import make_client
from ..e2e.gateway import GatewayFactory
from ..e2e.test_budgets import BUDGET_KEY, budget_config
from ..e2e.test_limits import HI
from ..upstreams.openai_mock import MockUpstream, RefusedPort

BUDGET_USD = 40.0  # $1 a token (input and output) in budget_config


def _sent(
    client: openai.OpenAI, upstream: MockUpstream, **extra: object
) -> tuple[dict[str, object], str | None]:
    """What the upstream received for one request, and the answer's cap header."""
    rid = f"cap-{uuid.uuid4().hex}"
    answer = client.chat.completions.with_raw_response.create(
        model="gpt-test",
        messages=HI,
        extra_headers={"x-request-id": rid},
        extra_body={"mock": {"chunks": 2}, **extra},
    )
    received = upstream.wait_for(rid).body_json
    assert isinstance(received, dict)
    return received, answer.headers.get("x-gatecore-max-tokens-capped")


def test_output_is_capped_to_what_the_budget_reserved(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(budget_config(upstream, refused, BUDGET_USD, period="monthly"))
    with make_client(gw, BUDGET_KEY) as client:
        # No max_tokens: default_max_tokens (1024) cannot be paid; the budget's $40 less the prompt can.
        received, capped = _sent(client, upstream)
        assert capped is not None
        cap = int(capped)
        assert received["max_tokens"] == cap
        assert 30 <= cap < 40  # $40 less a prompt of a few tokens, at $1 a token
        # Every choice is counted: two answers share what is left (the first request cost ~3 tokens).
        received, capped = _sent(client, upstream, n=2)
        assert capped is not None and received["max_tokens"] == int(capped) <= (cap - 2) // 2
        # A client limit that the budget can pay is sent as the client asked, with no header.
        received, capped = _sent(client, upstream, max_tokens=3)
        assert received["max_tokens"] == 3 and capped is None


def test_out_of_range_max_tokens_and_n_are_400s(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(budget_config(upstream, refused, BUDGET_USD, period="monthly"))
    with make_client(gw, BUDGET_KEY) as client:
        for extra in ({"max_tokens": -5}, {"max_tokens": 0}, {"n": 0}, {"n": 10_000}):
            try:
                client.chat.completions.create(model="gpt-test", messages=HI, **extra)  # type: ignore[call-overload]
            except openai.BadRequestError as exc:
                assert exc.code == "invalid_value", extra
                assert exc.param in ("max_tokens", "n")
            else:
                raise AssertionError(f"{extra} was accepted")
