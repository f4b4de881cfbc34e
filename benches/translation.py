"""Bounded benchmark: the cost of provider translation (OpenAI client → anthropic provider) against the
OpenAI pass-through, in one run on one machine.

1. In process: µs per upstream event for AnthropicStreamDecoder.feed + SseRelay.feed on a recorded
   Anthropic stream, against SseRelay.feed alone on the same answer in OpenAI's format.
2. End to end: `gatecore serve` (1 worker, core 0) in front of a raw-socket mock (core 1) that replays a
   fixed keep-alive answer byte for byte: 20 text deltas in either format. A raw asyncio client on
   core 1 streams chat completions at c=32 for DURATION seconds per provider and counts completed
   streams and their latency.

    PYTHONPATH=python .venv/bin/python benches/translation.py [--duration 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DELTAS = 20
KEY = "sk-bench-translation-01"


def anthropic_stream() -> bytes:
    def event(kind: str, data: dict[str, object]) -> bytes:
        return f"event: {kind}\ndata: {json.dumps({'type': kind, **data})}\n\n".encode()

    usage = {"input_tokens": 12, "output_tokens": 1}
    message = {
        "id": "msg_b",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [],
        "usage": usage,
    }
    out = [event("message_start", {"message": message})]
    out.append(event("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}))
    out += [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": f"tok{i} "}})
        for i in range(DELTAS)
    ]
    out.append(event("content_block_stop", {"index": 0}))
    out.append(
        event("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": DELTAS}})
    )
    out.append(event("message_stop", {}))
    return b"".join(out)


def openai_stream() -> bytes:
    def chunk(choices: list[object], **extra: object) -> bytes:
        obj = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": choices,
            **extra,
        }
        return b"data: " + json.dumps(obj).encode() + b"\n\n"

    out = [
        chunk([{"index": 0, "delta": {"content": f"tok{i} "}, "finish_reason": None}]) for i in range(DELTAS)
    ]
    out.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    out.append(chunk([], usage={"prompt_tokens": 12, "completion_tokens": DELTAS, "total_tokens": 32}))
    return b"".join(out) + b"data: [DONE]\n\n"


def decode_cost(rounds: int = 3000) -> dict[str, float]:
    from gatecore._core import SseRelay
    from gatecore.providers.anthropic_stream_to_hub import AnthropicStreamDecoder

    anth, oai = anthropic_stream(), openai_stream()
    events = anth.count(b"\n\n")

    def run(translate: bool) -> float:
        best = float("inf")
        for _ in range(5):
            started = time.perf_counter()
            for _ in range(rounds // 5):
                relay = SseRelay(None, True, True, "o200k_base")
                if translate:
                    decoder = AnthropicStreamDecoder("m", False)
                    for part in anth.split(b"\n\n")[:-1]:
                        relay.feed(decoder.feed(part + b"\n\n"))
                    relay.feed(decoder.finish())
                else:
                    for part in oai.split(b"\n\n")[:-1]:
                        relay.feed(part + b"\n\n")
                relay.finish()
            best = min(best, (time.perf_counter() - started) / (rounds // 5))
        return best

    translated, passthrough = run(True), run(False)
    return {
        "anthropic_events_per_answer": events,
        "translated_us_per_event": translated / events * 1e6,
        "passthrough_us_per_answer": passthrough * 1e6,
        "translated_us_per_answer": translated * 1e6,
        "added_us_per_answer": (translated - passthrough) * 1e6,
    }


async def serve_mock(port: int, body: bytes) -> None:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    parts = [e + b"\n\n" for e in body.split(b"\n\n")[:-1]]
    answer = head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                request_head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in request_head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


async def load(port: int, model: str, concurrency: int, duration: float) -> dict[str, float]:
    body = json.dumps(
        {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    ).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"authorization: Bearer " + KEY.encode() + b"\r\ncontent-length: %d\r\n\r\n" % len(body) + body
    )
    latencies: list[float] = []
    errors = 0
    deadline = time.monotonic() + duration

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while time.monotonic() < deadline:
            started = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(
                (
                    int(line[15:])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                ),
                None,
            )
            # Whole answers go out with a content-length, streamed ones chunked.
            data = await (
                reader.readexactly(length) if length is not None else reader.readuntil(b"\r\n0\r\n\r\n")
            )
            if b"[DONE]" not in data or b"tok19" not in data:
                errors += 1
            latencies.append(time.perf_counter() - started)
        writer.close()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    latencies.sort()
    return {
        "streams_per_s": len(latencies) / duration,
        "p50_ms": statistics.median(latencies) * 1e3,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1e3,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--mock", nargs=2, metavar=("PORT", "FORMAT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mock:
        body = anthropic_stream() if args.mock[1] == "anthropic" else openai_stream()
        asyncio.run(serve_mock(int(args.mock[0]), body))
        return
    print(json.dumps({"in_process": decode_cost()}, indent=2), flush=True)
    here = Path(__file__).resolve()
    env = {**os.environ, "PYTHONPATH": str(here.parents[1] / "python")}
    procs = [
        subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, str(here), "--mock", "18110", "openai"], env=env
        ),
        subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, str(here), "--mock", "18111", "anthropic"], env=env
        ),
    ]
    config = f"""
server: {{port: 18120, access_log: false}}
providers:
  - {{name: oai, kind: openai, base_url: "http://127.0.0.1:18110/v1", api_key: x}}
  - {{name: anth, kind: anthropic, base_url: "http://127.0.0.1:18111", api_key: x}}
models:
  - {{name: passthrough, deployments: [{{provider: oai, model: m}}]}}
  - {{name: translated, deployments: [{{provider: anth, model: m}}]}}
auth: {{master_key: {KEY}}}
"""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(config)
    gateway = subprocess.Popen(
        [
            "taskset",
            "-c",
            "0",
            sys.executable,
            "-m",
            "gatecore",
            "serve",
            "--config",
            f.name,
            "--port",
            "18120",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    procs.append(gateway)
    try:
        time.sleep(3)
        results = {}
        os.sched_setaffinity(0, {1})
        for model in ("passthrough", "translated", "passthrough", "translated"):
            run = asyncio.run(load(18120, model, args.concurrency, args.duration / 2))
            results.setdefault(model, []).append(run)
        print(json.dumps({f"end_to_end_c{args.concurrency}": results}, indent=2))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        os.unlink(f.name)


if __name__ == "__main__":
    main()
