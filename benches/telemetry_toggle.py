"""Same-process A/B of gatecore's per-request telemetry (metrics + access log) under steady load.

Separate servers per variant (benches/variants.sh, benches/ab.sh) differ by ±3-5 % from one start to
the next (memory layout, the VM's scheduling), as much as the telemetry costs. Here ONE server runs
under one continuous wrk load while its worker switches the metrics and access-log recorders off and
on every PERIOD seconds; each phase counts the requests it finished. The ratio of the phases' median
req/s is the telemetry's cost with everything else held equal.

    PYTHONPATH=python:. .venv/bin/python benches/telemetry_toggle.py CONFIG [SECONDS] [PERIOD] [MODE]
    TOGGLE=AccessLog ...      switch only these recorders (class names, comma-separated)
    TOGGLE=Tracing ...        switch tracing: its recorder and each chain's `tracing` (off, a request
                              makes no trace context, so its upstream call carries no traceparent)

CONFIG must turn on the recorders switched (metrics and the access log: the variants' "observed"). gatecore on core 0, the
harness's mocks and wrk on core 1; the load is bounded (wrk -d SECONDS under timeout).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from gatecore.server.app import app as gateway_app

ROOT = Path(__file__).resolve().parent.parent
HARNESS = Path(os.environ.get("GWBENCH_HARNESS", ROOT.parent / "shared" / "bench"))
RESULTS_ENV = "GATECORE_TOGGLE_RESULTS"
PERIOD_ENV = "GATECORE_TOGGLE_PERIOD"
TOGGLED = os.environ.get("TOGGLE", "AccessLog,MetricsRecorder").split(",")
PORT = 18559


class ToggleApp:
    """gatecore's RSGI app with its telemetry recorders switched off and on every period."""

    def __init__(self) -> None:
        self.count = 0
        self.phases: list[tuple[str, int, float]] = []
        self.on = True
        self.full: tuple[Any, ...] = ()
        self.lean: tuple[Any, ...] = ()
        self.tracing: Any = None
        self.mark = 0.0

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        gateway_app.__rsgi_init__(loop)
        gateway = gateway_app.worker
        assert gateway is not None
        self.full = gateway.recording.recorders
        self.lean = tuple(r for r in self.full if type(r).__name__ not in TOGGLED)
        assert len(self.lean) == len(self.full) - len(TOGGLED), f"the config must turn on {TOGGLED}"
        self.tracing = gateway.tracing
        self.mark = time.perf_counter()
        loop.call_later(float(os.environ[PERIOD_ENV]), self.flip, loop)

    def flip(self, loop: asyncio.AbstractEventLoop) -> None:
        now = time.perf_counter()
        self.phases.append(("on" if self.on else "off", self.count, now - self.mark))
        self.count, self.mark, self.on = 0, now, not self.on
        worker = gateway_app.worker
        assert worker is not None
        worker.recording.recorders = self.full if self.on else self.lean
        if "Tracing" in TOGGLED:
            for chain in worker.chains.values():
                chain.tracing = self.tracing if self.on else None
        loop.call_later(float(os.environ[PERIOD_ENV]), self.flip, loop)

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        Path(os.environ[RESULTS_ENV]).write_text(json.dumps(self.phases))
        gateway_app.__rsgi_del__(loop)

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        await gateway_app.__rsgi__(scope, proto)
        self.count += 1


app = ToggleApp()


def main() -> None:
    config = sys.argv[1]
    seconds = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    period = sys.argv[3] if len(sys.argv) > 3 else "2"
    mode = sys.argv[4] if len(sys.argv) > 4 else "json"
    subprocess.run(["bash", str(HARNESS / "mock" / "start.sh")], check=True, stdout=subprocess.DEVNULL)
    with tempfile.TemporaryDirectory() as work:
        results = Path(work) / "phases.json"
        env = {**os.environ, RESULTS_ENV: str(results), PERIOD_ENV: period, "PYTHONPATH": f"python:{ROOT}"}
        # `gatecore serve`'s setup (config path, shared counters, metrics directory) with this module's
        # app as granian's target.
        launcher = (
            "import sys, granian.server as s; base = s.Server\n"
            "s.Server = lambda target, **kw: base('benches.telemetry_toggle:app', **kw)\n"
            "from gatecore.server.serve import serve\n"
            f"serve({config!r}, False, '127.0.0.1', {PORT}, 1, 'warning')\n"
        )
        server = subprocess.Popen(
            ["taskset", "-c", "0", sys.executable, "-c", launcher],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/readyz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.1)
            wrk = [
                *("timeout", str(seconds + 15), "taskset", "-c", "1", "wrk", "-t1", "-c32"),
                *(f"-d{seconds}s", "--timeout", "10s", "-s", str(HARNESS / "lib" / "chat.lua")),
                f"http://127.0.0.1:{PORT}/v1/chat/completions",
            ]
            load_env = {**os.environ, "BENCH_MODE": mode}
            subprocess.run(wrk, env=load_env, check=True, stdout=subprocess.DEVNULL)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
        phases = json.loads(results.read_text())
    # The first two phases warm up; the last is cut short by the end of the load.
    rates: dict[str, list[float]] = {"on": [], "off": []}
    for phase, count, duration in phases[2:-1]:
        rates[phase].append(count / duration)
    on, off = statistics.median(rates["on"]), statistics.median(rates["off"])
    pairs = [a / b for a, b in zip(rates["on"], rates["off"], strict=False)]
    print(
        f"{mode}, {'+'.join(TOGGLED)}: off {off:,.0f} req/s, on {on:,.0f} req/s: {on / off:.3f}x "
        f"(n={len(rates['on'])}+{len(rates['off'])} phases of {period} s; "
        f"per-pair ratios {min(pairs):.3f}..{max(pairs):.3f}, median {statistics.median(pairs):.3f})"
    )


if __name__ == "__main__":
    main()
