"""Rate limits end to end: rpm, tpm and concurrency trip at the right request with the right headers,
per key and per model / deployment / global, shared by the workers of one server."""

from __future__ import annotations

import asyncio
import http.client
import json
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .anthropic_client import post_raw
from .conftest import make_async_client, make_client
from .gateway import Gateway, GatewayFactory, standard_config

RPM_KEY = "sk-limits-rpm-e2e-5c1a"
TPM_KEY = "sk-limits-tpm-e2e-8b2e"
PAR_KEY = "sk-limits-par-e2e-3f9d"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def limited_config(upstream: MockUpstream, refused: RefusedPort, **sections: Any) -> dict[str, Any]:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"]["keys"] += [
        {"key": RPM_KEY, "name": "rpm-key", "rpm": 3},
        {"key": TPM_KEY, "name": "tpm-key", "tpm": 1000},
        {"key": PAR_KEY, "name": "par-key", "max_parallel": 2},
    ]
    config.update(sections)
    return config


def chat(client: openai.OpenAI, model: str = "gpt-test", **kwargs: Any) -> Any:
    """A raw-response chat call (headers readable)."""
    return client.chat.completions.with_raw_response.create(model=model, messages=HI, **kwargs)


def seconds(duration: str) -> float:
    """OpenAI's reset format (`20s`, `1m0s`, `250ms`) in seconds."""
    if duration.endswith("ms"):
        return float(duration[:-2]) / 1000
    minutes, _, rest = duration.rpartition("m")
    return float(minutes or 0) * 60 + float(rest.rstrip("s"))


def refused(call: Any) -> openai.RateLimitError:
    with pytest.raises(openai.RateLimitError) as info:
        call()
    return info.value


def error_body(exc: openai.APIStatusError) -> dict[str, Any]:
    body: dict[str, Any] = exc.response.json()["error"]
    return body


@pytest.fixture
def limited(gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort) -> Gateway:
    limits = {
        "models": {"gpt-other": {"rpm": 2}},
        "deployments": {"up/upstream-model-1": {"max_parallel": 50}},
    }
    return gateway_factory(limited_config(upstream, refused, limits=limits))


def test_rpm_trips_at_the_limit_with_headers_and_retry_after(limited: Gateway) -> None:
    with make_client(limited, RPM_KEY) as client:
        for left in (2, 1, 0):
            raw = chat(client)
            assert raw.headers["x-ratelimit-limit-requests"] == "3"
            assert raw.headers["x-ratelimit-remaining-requests"] == str(left)
            # GCRA: the cell is full again (3 - left) * 20 s after the burst.
            assert (
                (3 - left) * 20 - 2 <= seconds(raw.headers["x-ratelimit-reset-requests"]) <= (3 - left) * 20
            )
            assert "x-ratelimit-limit-tokens" not in raw.headers  # the key has no tpm limit
            raw.parse()
        exc = refused(lambda: chat(client))
    assert exc.status_code == 429
    body = error_body(exc)
    assert body["code"] == "rate_limit_exceeded"
    assert "key 'rpm-key'" in body["message"] and "rpm" in body["message"]
    assert RPM_KEY not in body["message"]
    # One request frees up every 20 s (60 s / 3).
    assert 18 <= int(exc.response.headers["retry-after"]) <= 20
    # The limit is the key's: another key is not affected.
    with make_client(limited) as client:
        assert chat(client).status_code == 200


def test_anthropic_route_gets_its_own_429_shape(limited: Gateway) -> None:
    body = {"model": "gpt-test", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}
    statuses = [post_raw(limited, body, {"x-api-key": RPM_KEY}) for _ in range(4)]
    assert [s for s, _, _ in statuses] == [200, 200, 200, 429]
    _, headers, answer = statuses[-1]
    doc = json.loads(answer)
    assert doc["type"] == "error" and doc["error"]["type"] == "rate_limit_error"
    assert "key 'rpm-key'" in doc["error"]["message"]
    assert int(headers["retry-after"]) >= 1
    assert statuses[0][1]["x-ratelimit-remaining-requests"] == "2"


def test_model_limit_names_the_model(limited: Gateway) -> None:
    with make_client(limited) as client:
        chat(client, "gpt-other")
        chat(client, "gpt-other")
        exc = refused(lambda: chat(client, "gpt-other"))
        assert "model 'gpt-other'" in error_body(exc)["message"]
        assert chat(client, "gpt-test").status_code == 200


def test_tpm_admits_on_estimate_and_corrects_to_real_usage(limited: Gateway) -> None:
    with make_client(limited, TPM_KEY) as client:
        # Admitted on ~101 tokens (prompt + max_tokens); the upstream really produced 700.
        raw = chat(client, max_tokens=100, extra_body={"mock": {"chunks": 700}})
        assert raw.headers["x-ratelimit-limit-tokens"] == "1000"
        assert 850 <= int(raw.headers["x-ratelimit-remaining-tokens"]) <= 900
        assert raw.parse().usage.completion_tokens == 700
        # Corrected upwards: 701 used, so 451 more do not fit (on the estimate alone they would).
        exc = refused(lambda: chat(client, max_tokens=450))
        message = error_body(exc)["message"]
        assert "key 'tpm-key'" in message and "tpm" in message
        assert int(exc.response.headers["retry-after"]) >= 1
        # 201 do fit; this one really uses a few tokens, and is corrected downwards…
        raw = chat(client, max_tokens=200, extra_body={"mock": {"chunks": 2}})
        assert raw.parse().usage.completion_tokens == 2
        # …so 251 more fit (without the correction 701 + 201 + 251 would not).
        assert chat(client, max_tokens=250, extra_body={"mock": {"chunks": 1}}).status_code == 200
        # A request larger than the whole limit can never pass: no Retry-After, a clear message.
        exc = refused(lambda: chat(client, max_tokens=5000))
        assert "needs" in error_body(exc)["message"] and "retry-after" not in exc.response.headers


def _slow(client: openai.AsyncOpenAI, delay_ms: int, **kwargs: Any) -> Any:
    return client.chat.completions.create(
        model="gpt-slow", messages=HI, extra_body={"mock": {"first_byte_delay_ms": delay_ms}}, **kwargs
    )


async def until_two_fit(client: openai.AsyncOpenAI) -> None:
    """Two requests at once pass within 5 s: every slot of the key was given back."""
    for _ in range(20):
        outcomes = await asyncio.gather(*(_slow(client, 50) for _ in range(2)), return_exceptions=True)
        if not any(isinstance(o, Exception) for o in outcomes):
            return
        assert all(isinstance(o, openai.RateLimitError) for o in outcomes if isinstance(o, Exception)), (
            outcomes
        )
        await asyncio.sleep(0.25)
    raise AssertionError("concurrency slots were not given back")


def test_concurrency_slots_trip_and_are_released_after_errors_and_disconnects(limited: Gateway) -> None:
    async def scenario() -> None:
        async with make_async_client(limited, PAR_KEY) as client:
            # Two in flight: the third is refused at once, naming the limit.
            slow = [asyncio.ensure_future(_slow(client, 1500)) for _ in range(2)]
            await asyncio.sleep(0.4)
            with pytest.raises(openai.RateLimitError) as info:
                await _slow(client, 0)
            assert "max_parallel" in error_body(info.value)["message"]
            assert "key 'par-key'" in error_body(info.value)["message"]
            await asyncio.gather(*slow)
            # Upstream errors and unreachable upstreams release their slot.
            for _ in range(3):
                with pytest.raises(openai.InternalServerError):
                    await client.chat.completions.create(
                        model="gpt-test", messages=HI, extra_body={"mock": {"status": 500}}
                    )
                with pytest.raises(openai.APIStatusError) as bad_gateway:
                    await client.chat.completions.create(model="gpt-refused", messages=HI)
                assert bad_gateway.value.status_code == 502
            # Clients that go away (a non-streamed wait, and a stream cut half-way) release theirs.
            async with make_async_client(limited, PAR_KEY, timeout=0.3) as impatient:
                waits = await asyncio.gather(
                    *(_slow(impatient, 3000) for _ in range(2)), return_exceptions=True
                )
                assert all(isinstance(w, openai.APITimeoutError) for w in waits), waits
                await until_two_fit(client)
                streams = [
                    await impatient.chat.completions.create(
                        model="gpt-test",
                        messages=HI,
                        stream=True,
                        extra_body={"mock": {"chunks": 50, "gap_ms": 100}},
                    )
                    for _ in range(2)
                ]
                for stream in streams:
                    async for _ in stream:
                        break
                    await stream.close()
                await until_two_fit(client)

    asyncio.run(scenario())


def _post_fresh_connection(gw: Gateway, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        body = json.dumps({"model": "gpt-test", "messages": HI})
        headers = {
            "authorization": f"Bearer {key}",
            "content-type": "application/json",
            "connection": "close",
        }
        conn.request("POST", "/v1/chat/completions", body, headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.mark.timeout(120)
def test_workers_share_counters(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = limited_config(upstream, refused)
    config["auth"]["keys"].append({"key": "sk-limits-ten-e2e-0a0a", "name": "ten", "rpm": 10})
    gw = gateway_factory(config, workers=2)

    async def burst() -> list[int]:
        return await asyncio.gather(
            *(asyncio.to_thread(_post_fresh_connection, gw, "sk-limits-ten-e2e-0a0a") for _ in range(20))
        )

    statuses = asyncio.run(burst())
    assert sorted(statuses) == [200] * 10 + [429] * 10


def test_tpm_without_max_tokens_passes_on_a_full_bucket(limited: Gateway) -> None:
    # The default output estimate (1024) alone is over the key's 1000 tpm: the request still passes
    # when the bucket is full, and is charged what it really used.
    with make_client(limited, TPM_KEY) as client:
        raw = chat(client, extra_body={"mock": {"chunks": 3}})
        assert raw.headers["x-ratelimit-remaining-tokens"] == "0"
        assert raw.parse().usage.completion_tokens == 3
        assert chat(client, max_tokens=900).status_code == 200
