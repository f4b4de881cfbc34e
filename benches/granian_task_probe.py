"""Does granian's Rust task implementation (`task_impl=rust`) resume a handler correctly?

gatecore's throughput is ~20% higher with granian's experimental Rust tasks (plain config, JSON, c=32:
17,943 vs 14,918 req/s, benches/README.md), but with granian 2.8.9 on Python 3.11 a handler that
catches an exception from an awaited future and then awaits again never gets past that await:
granian answers 500 with no body, and in gatecore every failover after a refused connection or an
upstream error hangs until the client gives up. This probe serves three handlers under each task
implementation and says which answer (each request bounded by a 3 s timeout):

    .venv/bin/python benches/granian_task_probe.py

- `plain`: one await.
- `raise-then-await`: a future that raises, caught, then another await (gatecore's attempt loop).
- `open-refused`: a refused connection caught, then a sleep.

Run it again on a new granian before turning Rust tasks on (pyproject pins granian's range).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

PATHS = ("plain", "raise-then-await", "open-refused")


async def app(scope: Any, proto: Any) -> None:
    """The RSGI app the probe serves (granian imports it from this module)."""
    if scope.proto != "http":
        return
    loop = asyncio.get_running_loop()
    if scope.path == "/raise-then-await":
        failing = loop.create_future()
        loop.call_later(0.01, failing.set_exception, ConnectionRefusedError("refused"))
        with contextlib.suppress(ConnectionRefusedError):
            await failing
        second = loop.create_future()
        loop.call_later(0.01, second.set_result, b"second")
        body = await second
    elif scope.path == "/open-refused":
        with contextlib.suppress(OSError):
            await loop.create_connection(asyncio.Protocol, "127.0.0.1", _closed_port())
        await asyncio.sleep(0.01)
        body = b"after refused"
    else:
        await asyncio.sleep(0.01)
        body = b"plain"
    proto.response_bytes(200, [("content-type", "text/plain")], body)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def probe(task_impl: str) -> dict[str, str]:
    port = _closed_port()
    granian = os.path.join(os.path.dirname(sys.executable), "granian")
    cmd = [granian, "--interface", "rsgi", "--loop", "uvloop", "--task-impl", task_impl]
    server = subprocess.Popen(
        [*cmd, "--port", str(port), "granian_task_probe:app"],
        cwd=os.path.dirname(os.path.abspath(__file__)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    results: dict[str, str] = {}
    try:
        for _ in range(50):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        for path in PATHS:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/{path}", timeout=3) as answer:
                    results[path] = answer.read().decode()
            except (TimeoutError, urllib.error.URLError) as exc:
                results[path] = f"NO ANSWER ({exc})"
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=10)
    return results


def main() -> None:
    for task_impl in ("asyncio", "rust"):
        for path, answer in probe(task_impl).items():
            print(f"{task_impl:8} {path:17} {answer}")


if __name__ == "__main__":
    main()
