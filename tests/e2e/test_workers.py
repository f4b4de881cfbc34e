"""``--workers 2``: two worker processes, and many concurrent requests all answered correctly."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import make_async_client
from .gateway import GatewayFactory, standard_config

REQUESTS = 200
CONCURRENCY = 50


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after the last ')'.
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(stat.parent.name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree = _children()
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


@pytest.mark.timeout(120)
def test_two_workers_serve_concurrent_requests(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(standard_config(upstream.base_url, refused.base_url), workers=2)

    processes = [p for p in _descendants(gw.proc.pid) if "resource_tracker" not in _cmdline(p)]
    spawned = [p for p in processes if "spawn_main" in _cmdline(p)]
    if spawned:
        assert len(spawned) == 2, [_cmdline(p) for p in processes]
    else:
        assert len(processes) >= 2, [_cmdline(p) for p in processes]

    async def one(aclient: openai.AsyncOpenAI, gate: asyncio.Semaphore, i: int) -> tuple[int, str, str]:
        async with gate:
            messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"worker request {i}"}]
            if i % 3 == 0:
                text = ""
                async with aclient.chat.completions.with_streaming_response.create(
                    model="gpt-test", messages=messages, stream=True
                ) as response:
                    rid = response.headers["x-request-id"]
                    async for chunk in await response.parse():
                        if chunk.choices:
                            assert chunk.model == "gpt-test"
                            text += chunk.choices[0].delta.content or ""
                return i, text, rid
            raw = await aclient.chat.completions.with_raw_response.create(model="gpt-test", messages=messages)
            completion = raw.parse()
            assert completion.model == "gpt-test"
            return i, completion.choices[0].message.content or "", raw.headers["x-request-id"]

    async def main() -> list[tuple[int, str, str]]:
        gate = asyncio.Semaphore(CONCURRENCY)
        async with make_async_client(gw, timeout=30) as aclient:
            return await asyncio.wait_for(
                asyncio.gather(*(one(aclient, gate, i) for i in range(REQUESTS))), 90
            )

    results = asyncio.run(main())
    assert len(results) == REQUESTS
    for i, text, _ in results:
        assert text == f"mock: worker request {i}"
    request_ids = [rid for _, _, rid in results]
    assert len(set(request_ids)) == REQUESTS, "generated request ids collide across workers"
    assert gw.alive()
