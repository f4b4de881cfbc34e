"""A loopback emulator of one vLLM-like inference engine replica, for GPU-pool tests and benches.

It behaves as a vLLM OpenAI-compatible server does under load: `slots` requests run at once (the
batch), later ones wait in a FIFO queue; a running request's first token comes `ttft_s` after it got
a slot (`hit_ttft_s` when its prompt's first `prefix_bytes` were seen before on this replica: the
KV prefix cache), then one token every `tpot_s` until `max_tokens` (default `default_output`).
`GET /metrics` publishes vLLM's own gauges and counters for it (`vllm:num_requests_running`,
`vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`, `vllm:request_success_total`,
`vllm:prefix_cache_queries_total`, `vllm:prefix_cache_hits_total`); `POST /tokenize`, `GET /v1/models`
(with `root` and `max_model_len`), `GET /version` and `GET /health` answer as vLLM's do.

A client that goes away frees its slot or queue place at once. Tokens are words: a prompt's count is
its words (what `/tokenize` reports), and every output token is the word `tok`.

    with EngineEmulator(slots=4, ttft_s=0.2, tpot_s=0.01) as engine:
        base_url = engine.base_url          # http://127.0.0.1:<port>/v1

Run as a program (`python -m tests.upstreams.engine_emulator --replicas 2 --slots 4`), it serves that
many replicas until interrupted and prints one base URL a line (the benches start it so).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import time
from typing import Any

from aiohttp import web

from .mock_server import MockServer

PREFIX_CACHE_ENTRIES = 4096
VERSION = "0.6.3.post1"


class EngineEmulator(MockServer):
    """One replica: a batch of `slots`, a FIFO queue, paced tokens, vLLM's metrics."""

    thread_name = "engine-emulator"
    backlog = 1024

    def __init__(
        self,
        *,
        slots: int = 4,
        ttft_s: float = 1.0,
        tpot_s: float = 0.025,
        hit_ttft_s: float | None = None,
        prefix_bytes: int = 256,
        default_output: int = 16,
        model: str = "m",
        root: str = "org/m",
        revision: str = "0123abcd",
        max_model_len: int = 8192,
    ) -> None:
        super().__init__()
        self.slots = slots
        self.ttft_s = ttft_s
        self.tpot_s = tpot_s
        self.hit_ttft_s = ttft_s / 4 if hit_ttft_s is None else hit_ttft_s
        self.prefix_bytes = prefix_bytes
        self.default_output = default_output
        self.model = model
        self.root = root
        self.revision = revision
        self.max_model_len = max_model_len
        self.running = 0
        self.waiting = 0
        self.success = 0
        self.prefix_queries = 0
        self.prefix_hits = 0
        self.served = 0  # inference requests that got a slot
        self.peak_running = 0
        self.peak_waiting = 0
        self._queue: collections.deque[asyncio.Future[None]] = collections.deque()
        self._prefixes: collections.OrderedDict[bytes, None] = collections.OrderedDict()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/tokenize", self._tokenize)
        app.router.add_get("/version", self._version)
        app.router.add_get("/health", self._health)

    # -- the batch and its queue -----------------------------------------------------------------------

    async def _acquire(self) -> None:
        if self.running < self.slots and not self._queue:
            self.running += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append(future)
        self.waiting += 1
        self.peak_waiting = max(self.peak_waiting, self.waiting)
        try:
            await future  # the slot is handed over by _release (running already counts it)
        except BaseException:
            if future.done() and not future.cancelled():
                self._release()  # it was handed the slot as it went away: pass it on
            elif future in self._queue:
                self._queue.remove(future)
            raise
        finally:
            self.waiting -= 1

    def _release(self) -> None:
        while self._queue:
            future = self._queue.popleft()
            if not future.done():
                future.set_result(None)  # the slot goes straight to the next in line
                return
        self.running -= 1

    def _cached(self, prompt: str) -> bool:
        """Whether the prompt's first `prefix_bytes` were seen here before (and remember them)."""
        key = hashlib.blake2b(prompt.encode()[: self.prefix_bytes], digest_size=16).digest()
        self.prefix_queries += 1
        prefixes = self._prefixes
        if key in prefixes:
            prefixes.move_to_end(key)
            self.prefix_hits += 1
            return True
        prefixes[key] = None
        if len(prefixes) > PREFIX_CACHE_ENTRIES:
            prefixes.popitem(last=False)
        return False

    # -- handlers --------------------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _generate(self, request: web.Request, chat: bool) -> web.StreamResponse:
        recorded = await self.record(request)
        body = recorded.body_json
        if not isinstance(body, dict):
            recorded.finished.set()
            return web.json_response(
                {"error": {"message": "invalid JSON", "type": "BadRequestError"}}, status=400
            )
        prompt = prompt_text(body)
        outputs = int(body.get("max_completion_tokens") or body.get("max_tokens") or self.default_output)
        stream = bool(body.get("stream"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        created = int(time.time())
        ident = f"cmpl-{recorded.peer_port}-{created}"
        await self._acquire()
        self.peak_running = max(self.peak_running, self.running)
        try:
            self.served += 1
            hit = self._cached(prompt)
            await asyncio.sleep(self.hit_ttft_s if hit else self.ttft_s)
            usage = {
                "prompt_tokens": count_words(prompt),
                "completion_tokens": outputs,
                "total_tokens": count_words(prompt) + outputs,
            }
            if not stream:
                await asyncio.sleep(self.tpot_s * max(0, outputs - 1))
                text = " ".join(["tok"] * outputs)
                choice: dict[str, Any] = (
                    {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
                    if chat
                    else {"index": 0, "text": text, "finish_reason": "length"}
                )
                answer = {
                    "id": ident,
                    "object": "chat.completion" if chat else "text_completion",
                    "created": created,
                    "model": body.get("model", self.model),
                    "choices": [choice],
                    "usage": usage,
                }
                self.success += 1
                recorded.status = 200
                recorded.finished.set()
                return web.json_response(answer, headers={"x-prefix-cache": "hit" if hit else "miss"})
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "x-prefix-cache": "hit" if hit else "miss"}
            )
            await response.prepare(request)
            for i in range(outputs):
                if i:
                    await asyncio.sleep(self.tpot_s)
                piece = "tok" if i == 0 else " tok"
                delta: dict[str, Any] = (
                    {"index": 0, "delta": {"content": piece}, "finish_reason": None}
                    if chat
                    else {"index": 0, "text": piece, "finish_reason": None}
                )
                if i == outputs - 1:
                    delta["finish_reason"] = "length"
                chunk = {
                    "id": ident,
                    "object": "chat.completion.chunk" if chat else "text_completion",
                    "created": created,
                    "model": body.get("model", self.model),
                    "choices": [delta],
                }
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
            if include_usage:
                tail = {"id": ident, "object": "chat.completion.chunk", "created": created, "choices": []}
                tail["usage"] = usage
                await response.write(b"data: " + json.dumps(tail).encode() + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            self.success += 1
            recorded.status = 200
            return response
        finally:
            self._release()
            recorded.finished.set()

    async def _models(self, request: web.Request) -> web.StreamResponse:
        model = {
            "id": self.model,
            "object": "model",
            "created": 1700000000,
            "owned_by": "vllm",
            "root": self.root,
            "revision": self.revision,
            "max_model_len": self.max_model_len,
        }
        return web.json_response({"object": "list", "data": [model]})

    async def _version(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"version": VERSION})

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def _tokenize(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "invalid JSON"}}, status=400)
        words = prompt_text(body).split()
        tokens = [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "big") for w in words]
        return web.json_response(
            {"count": len(tokens), "max_model_len": self.max_model_len, "tokens": tokens}
        )

    async def _metrics(self, request: web.Request) -> web.StreamResponse:
        labels = f'{{engine="0",model_name="{self.model}"}}'
        kv = min(1.0, self.running / max(1, self.slots) * 0.9)
        text = (
            "# TYPE vllm:num_requests_running gauge\n"
            f"vllm:num_requests_running{labels} {float(self.running)}\n"
            "# TYPE vllm:num_requests_waiting gauge\n"
            f"vllm:num_requests_waiting{labels} {float(self.waiting)}\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\n"
            f"vllm:kv_cache_usage_perc{labels} {kv}\n"
            "# TYPE vllm:request_success_total counter\n"
            f'vllm:request_success_total{{engine="0",finished_reason="length",model_name="{self.model}"}} '
            f"{float(self.success)}\n"
            "# TYPE vllm:prefix_cache_queries_total counter\n"
            f"vllm:prefix_cache_queries_total{labels} {float(self.prefix_queries)}\n"
            "# TYPE vllm:prefix_cache_hits_total counter\n"
            f"vllm:prefix_cache_hits_total{labels} {float(self.prefix_hits)}\n"
        )
        return web.Response(text=text, content_type="text/plain")


def prompt_text(body: dict[str, Any]) -> str:
    """The prompt's text: the messages' contents joined by newlines, or `prompt`."""
    messages = body.get("messages")
    if isinstance(messages, list):
        parts = []
        for message in messages:
            content = message.get("content") if isinstance(message, dict) else None
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(p.get("text", "") for p in content if isinstance(p, dict))
        return "\n".join(parts)
    prompt = body.get("prompt")
    return prompt if isinstance(prompt, str) else ""


def count_words(text: str) -> int:
    return len(text.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--ttft", type=float, default=1.0)
    parser.add_argument("--tpot", type=float, default=0.025)
    parser.add_argument("--hit-ttft", type=float, default=None)
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop after this long at most")
    args = parser.parse_args()
    engines = [
        EngineEmulator(slots=args.slots, ttft_s=args.ttft, tpot_s=args.tpot, hit_ttft_s=args.hit_ttft)
        for _ in range(args.replicas)
    ]
    for engine in engines:
        engine.start()
    print("\n".join(engine.base_url for engine in engines), flush=True)
    try:
        time.sleep(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        for engine in engines:
            engine.stop()


if __name__ == "__main__":
    main()
