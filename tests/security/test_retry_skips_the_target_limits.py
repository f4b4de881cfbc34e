"""Attack: reach a deployment or model past its own limits by making the first choice fail (or slow).

Issue 17 (low): retries, fallbacks and refusal redirects counted a request only against the limits of
the deployment and model it was first routed to, so a request whose first attempt failed (or was slow
enough to be hedged) reached its next target however many requests that target's
`limits.deployments` / `limits.models` allowed. Now a
request that moves counts against the new target's rules (once per scope it reaches), and a target
whose limits refuse is skipped like one that answered 429: the upstream behind it never sees the
request.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ..e2e.conftest import make_client
from ..e2e.gateway import MASTER_KEY, Gateway, running_gateway, write_config
from ..upstreams.openai_mock import RefusedPort
from ..upstreams.replica_mock import Replica

TIMEOUTS = {"connect": 2, "first_byte": 5, "idle": 5, "total": 10}
CONTEXT_EXCEEDED = {
    "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "9000 tokens. Please reduce the length of the messages.",
    "type": "invalid_request_error",
    "param": "messages",
    "code": "context_length_exceeded",
}


def model(name: str, *deployments: tuple[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "timeouts": TIMEOUTS,
        "deployments": [
            {"provider": provider, "model": upstream, "priority": i}
            for i, (provider, upstream) in enumerate(deployments)
        ],
        **extra,
    }


@pytest.fixture(scope="module")
def upstreams() -> Iterator[tuple[Replica, Replica]]:
    with Replica() as first, Replica() as guarded:
        yield first, guarded


@pytest.fixture(scope="module")
def gw(upstreams: tuple[Replica, Replica], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    first, guarded = upstreams
    refused = RefusedPort()
    try:
        cfg = {
            "providers": [
                {"name": "down", "kind": "openai", "base_url": refused.base_url, "api_key": "sk-up"},
                {"name": "first", "kind": "openai", "base_url": first.base_url, "api_key": "sk-up"},
                {"name": "guarded", "kind": "openai", "base_url": guarded.base_url, "api_key": "sk-up"},
            ],
            "models": [
                # A retry on the model's second deployment, which allows 1 request a minute.
                model("pool", ("down", "pool-a"), ("guarded", "pool-b")),
                # A fallback model that allows 1 request a minute.
                model("primary", ("down", "primary-a"), fallbacks=["backup"]),
                model("backup", ("guarded", "backup-b")),
                # A context-length redirect to a model that allows 1 request a minute.
                model("short", ("first", "short-a"), context_fallbacks=["long"]),
                model("long", ("guarded", "long-b")),
                # A hedge after 0.1 s on a second deployment that allows 1 request a minute.
                model(
                    "hedged",
                    ("first", "hedged-a"),
                    ("guarded", "hedged-b"),
                    routing={"hedge": {"delay_s": 0.1}},
                ),
            ],
            "limits": {
                "deployments": {"guarded/pool-b": {"rpm": 1}, "guarded/hedged-b": {"rpm": 1}},
                "models": {"backup": {"rpm": 1}, "long": {"rpm": 1}},
            },
            "auth": {"master_key": MASTER_KEY},
        }
        workdir: Path = tmp_path_factory.mktemp("moves")
        config_path = write_config(cfg, workdir / "g.yaml")
        with running_gateway(["--config", str(config_path)], workdir, config=cfg) as g:
            yield g
    finally:
        refused.close()


@pytest.fixture(autouse=True)
def fresh(upstreams: tuple[Replica, Replica]) -> None:
    for replica in upstreams:
        replica.clear()
        replica.steer = {}


def chat(gw: Gateway, name: str) -> tuple[int, str | None]:
    """The status and x-gatecore-model of one request for `name` (answered or refused)."""
    with make_client(gw) as client:
        try:
            raw = client.chat.completions.with_raw_response.create(
                model=name, messages=[{"role": "user", "content": "hello there"}]
            )
        except openai.APIStatusError as exc:
            return exc.status_code, exc.response.headers.get("x-gatecore-model")
        return raw.status_code, raw.headers.get("x-gatecore-model")


@pytest.mark.parametrize("name", ["pool", "primary"], ids=["retry", "fallback"])
def test_a_retry_or_fallback_counts_against_its_target_limits(
    gw: Gateway, upstreams: tuple[Replica, Replica], name: str
) -> None:
    _, guarded = upstreams
    assert chat(gw, name)[0] == 200  # the first attempt fails, the second target admits it
    status, served_by = chat(gw, name)
    # The second request's move is refused by the target's rpm: the first attempt's failure is the
    # answer (no upstream answered), and the guarded upstream saw one request, not two.
    assert status == 502, (status, served_by)
    assert guarded.hits == 1


def test_a_refusal_redirect_counts_against_its_target_limits(
    gw: Gateway, upstreams: tuple[Replica, Replica]
) -> None:
    first, guarded = upstreams
    first.steer = {"status": 400, "error": CONTEXT_EXCEEDED}
    assert chat(gw, "short") == (200, "guarded/long-b")
    # The redirect's target allows no second request this minute: the refusal is relayed as the
    # upstream gave it, from the deployment that gave it.
    assert chat(gw, "short") == (400, "first/short-a")
    assert (first.hits, guarded.hits) == (2, 1)


def test_a_hedge_counts_against_its_deployment_limits(
    gw: Gateway, upstreams: tuple[Replica, Replica]
) -> None:
    first, guarded = upstreams
    first.steer = {"first_byte_delay_ms": 600}
    assert chat(gw, "hedged") == (200, "guarded/hedged-b")  # the hedge won
    # The second deployment allows no second request this minute: no hedge, the slow first answers.
    assert chat(gw, "hedged") == (200, "first/hedged-a")
    assert guarded.hits == 1
