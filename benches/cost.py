"""Deterministic cost per request: instructions (valgrind callgrind) of the serving process, per request
kind and concurrency, for gatecore and for the granian ceiling. The machine's mood does not move it.

Each target's server runs under `valgrind --tool=callgrind --trace-children=yes` (granian's worker is
a child process); the mocks and the client run natively on core 1. Per cell (target, kind, c): a
warm-up, `callgrind_control -z` on the worker, exactly N requests from c keep-alive connections,
`callgrind_control -d`, and the dump's total / N. Time-driven work (timers, the metrics snapshot,
the key table's store poll, every 0.25 s) lands in the N requests' window too, and under valgrind that
window is ~50x longer than natively: the worker's rate with no request (`idle/s`, measured over 2 s
first) times the window's length is taken off before dividing.

    PYTHONPATH=python .venv/bin/python benches/cost.py [--n 600] [--conc "1 16"] [--targets ...]

Targets: `ceiling` (the shared harness's granian RSGI app, same granian as gatecore), `default`
(a virtual key from the store, ledger and metrics on, access log off: the default configuration),
`all` (the same key with rpm, tpm and a budget, the access log on), `static` (benches/gatecore-bench.yaml's
static key, ledger and metrics on). Kinds: `json`, `stream` (20 events, pass-through), `translated`
(an Anthropic upstream's 25-event stream to an OpenAI client; gatecore only).
`--stages` runs the per-stage table instead (benches/stage_cost.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
HARNESS = Path(os.environ.get("GWBENCH_HARNESS", ROOT.parent / "shared" / "bench"))
if not HARNESS.is_dir():  # a worktree elsewhere: the shared harness of this machine
    HARNESS = Path("/work/shared/bench")
_BASE = int(os.environ.get("COST_PORT_BASE", "18300"))  # mocks at +0, +1, +2; the server at +10
MOCK_JSON, MOCK_STREAM, MOCK_ANTH = _BASE, _BASE + 1, _BASE + 2
PORT = _BASE + 10
KEY_MASTER = "sk-cost-master-0123456789abcdef"
LOADGEN_CPU = os.environ.get("LOADGEN_CPUS", "1")
GW_CPU = os.environ.get("GW_CPUS", "0")
PER_CELL_TIMEOUT_S = 600
# Starting gatecore under valgrind takes ~1 min on an idle core, much longer on a shared machine.
START_S = int(os.environ.get("COST_START_S", "1800"))
KEEP = os.environ.get("COST_KEEP") == "1"  # keep the callgrind dumps (for callgrind_annotate)


def _harness_mock() -> object:
    spec = importlib.util.spec_from_file_location("gen_nginx_mock", HARNESS / "mock" / "gen_nginx_mock.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# --- mock upstreams (one process, core 1): fixed keep-alive answers ----------------------------------


async def _serve(port: int, answer: bytes) -> asyncio.AbstractServer:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)


def mocks_main() -> None:
    mock = _harness_mock()
    sys.path.insert(0, str(HERE))
    from translation import anthropic_stream

    def whole(ctype: str, body: bytes) -> bytes:
        return b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
            ctype.encode(),
            len(body),
            body,
        )

    def chunked(body: bytes) -> bytes:
        parts = [e + b"\n\n" for e in body.split(b"\n\n")[:-1]]
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"

    async def main() -> None:
        servers = [
            await _serve(MOCK_JSON, whole("application/json", mock.completion_json().encode())),  # type: ignore[attr-defined]
            await _serve(MOCK_STREAM, whole("text/event-stream", mock.sse_body().encode())),  # type: ignore[attr-defined]
            await _serve(MOCK_ANTH, chunked(anthropic_stream())),
        ]
        await asyncio.gather(*(s.serve_forever() for s in servers))

    asyncio.run(main())


# --- the client: exactly N requests over c keep-alive connections -----------------------------------

BODY = (
    b'{"model":"%s","messages":[{"role":"system","content":"You are a terse assistant."},'
    b'{"role":"user","content":"Say hello in one short sentence."}],"max_tokens":32,"temperature":0%s}'
)
STREAM_TAIL = b',"stream":true,"stream_options":{"include_usage":true}'
MODELS = {
    "json": (b"mock", b""),
    "stream": (b"mock-stream", STREAM_TAIL),
    "translated": (b"translated", STREAM_TAIL),
}


def request_bytes(kind: str, key: str) -> bytes:
    model, tail = MODELS[kind]
    body = BODY % (model, tail)
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"x-mock-mode: %s\r\nauthorization: Bearer %s\r\ncontent-length: %d\r\n\r\n%s"
        % (b"stream" if tail else b"json", key.encode(), len(body), body)
    )


async def _load(port: int, request: bytes, n: int, conc: int) -> int:
    """Send exactly n requests (c connections share them); returns the count of non-200 answers."""
    left = n
    bad = 0

    async def worker() -> None:
        nonlocal left, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while left > 0:
            left -= 1
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                bad += 1
            length = None
            chunked = False
            for line in head.lower().split(b"\r\n"):
                if line.startswith(b"content-length:"):
                    length = int(line[15:])
                elif line.startswith(b"transfer-encoding:") and b"chunked" in line:
                    chunked = True
            if length is not None:
                await reader.readexactly(length)
            elif chunked:
                while True:
                    size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                    await reader.readexactly(size + 2)
                    if size == 0:
                        break
        writer.close()

    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(conc))), PER_CELL_TIMEOUT_S)
    return bad


def load(port: int, request: bytes, n: int, conc: int) -> int:
    return asyncio.run(_load(port, request, n, conc))


# --- configs --------------------------------------------------------------------------------------


def base_config() -> dict[str, Any]:
    """The three mock upstreams behind client-facing names (the model rewrite is measured)."""
    return {
        "providers": [
            {
                "name": "json",
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{MOCK_JSON}/v1",
                "api_key": "none",
            },
            {
                "name": "stream",
                "kind": "openai",
                "base_url": f"http://127.0.0.1:{MOCK_STREAM}/v1",
                "api_key": "none",
            },
            {
                "name": "anth",
                "kind": "anthropic",
                "base_url": f"http://127.0.0.1:{MOCK_ANTH}",
                "api_key": "none",
            },
        ],
        "models": [
            {
                "name": "mock",
                "deployments": [{"provider": "json", "model": "mock-upstream", "pricing": PRICE}],
            },
            {
                "name": "mock-stream",
                "deployments": [{"provider": "stream", "model": "mock-stream-upstream", "pricing": PRICE}],
            },
            {
                "name": "translated",
                "deployments": [{"provider": "anth", "model": "mock-anthropic", "pricing": PRICE}],
            },
        ],
        "server": {"access_log": False},
    }


PRICE = {"input_per_1m": 1.0, "output_per_1m": 2.0}  # a budget needs a price
STATIC_KEY = "sk-gwbench-5f0c9a1e7b3d4c2a8e6f1b0d9c7a5e3f"
LIMITS = {"rpm": 100_000_000, "tpm": 10_000_000_000, "budget_usd": 1_000_000}
_MAKE_KEY = """
import asyncio, json, sys
from gatecore.config.source import read_config
from gatecore.identity.repository import IdentityRepository
from gatecore.identity.records import ApiKey
from gatecore.identity.secrets import KeyHasher
from gatecore.store import open_store
from gatecore.store.migrations import migrate
async def main() -> None:
    config = read_config(sys.argv[1], demo=False)
    store = await open_store(config.store.url)
    await migrate(store)
    repo = IdentityRepository(store, KeyHasher(config.auth.key_hash_secret))
    for i in range(int(sys.argv[3])):
        await repo.create_key(ApiKey(id="", name=f"filler-{i}", prefix="", hash=""), "bench")
    key, secret = await repo.create_key(
        ApiKey(id="", name="bench", prefix="", hash="", **json.loads(sys.argv[2])), "bench")
    await store.close()
    print(secret)
asyncio.run(main())
"""


def write_config(
    work: Path, name: str, config: dict[str, Any], key_fields: dict[str, object] | None
) -> tuple[Path, str]:
    """Write `config` (JSON is YAML); with `key_fields`, a store and one virtual key among 1,000 others
    (the key table's lookup is part of the cost), else the static key. Returns (path, secret)."""
    path = work / f"{name}.yaml"
    if key_fields is None:
        config = {**config, "auth": {"keys": [{"key": STATIC_KEY, "name": "bench"}]}}
        path.write_text(json.dumps(config))
        return path, STATIC_KEY
    config = {
        **config,
        "auth": {"master_key": KEY_MASTER, "key_hash_secret": "cost-hash-secret-0123456789"},
        "store": {"url": f"sqlite:///{work}/{name}.db"},
    }
    path.write_text(json.dumps(config))
    out = subprocess.run(
        [sys.executable, "-c", _MAKE_KEY, str(path), json.dumps(key_fields), "1000"],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT / "python")},
    )
    return path, out.stdout.strip().splitlines()[-1]


def target_config(work: Path, target: str) -> tuple[Path | None, str]:
    if target == "ceiling":
        return None, "unused"
    config = base_config()
    if target == "static":
        return write_config(work, target, config, None)
    if target == "default":  # virtual key, ledger and metrics on (their defaults), access log off
        return write_config(work, target, config, {})
    if target == "all":  # + rpm, tpm and a budget on the key, the access log on
        config["server"] = {"access_log": True}
        return write_config(work, target, config, LIMITS)
    raise SystemExit(f"unknown target {target}")


# --- one server under callgrind -------------------------------------------------------------------


class Server:
    def __init__(self, work: Path, name: str, config: Path | None):
        self.out = work / f"cg-{name}"
        self.out.mkdir()
        vg = [
            "valgrind",
            "--tool=callgrind",
            "--trace-children=yes",
            f"--callgrind-out-file={self.out}/cg.%p",
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT / "python")}
        python = sys.executable
        if config is None:
            granian = str(Path(python).parent / "granian")
            cmd = [
                granian,
                "--interface",
                "rsgi",
                "--workers",
                "1",
                "--loop",
                "uvloop",
                "--host",
                "127.0.0.1",
            ]
            cmd += ["--port", str(PORT), "--no-access-log", "app:app"]
            cwd = str(HARNESS / "anchors" / "granian-ceiling")
        else:
            cmd = [python, "-m", "gatecore", "serve", "--config", str(config), "--port", str(PORT)]
            cwd = str(ROOT)
        self.log = open(work / f"{name}.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            ["taskset", "-c", GW_CPU, *vg, *cmd], cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.worker = self._wait()
        self.last_dump = ""

    def _wait(self) -> int:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"server exited: see {self.log.name}")
            children = subprocess.run(
                ["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True
            ).stdout.split()
            if children:
                try:
                    import urllib.request

                    urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=5).read()
                    return int(children[0])
                except OSError as exc:
                    if "404" in str(exc) or "405" in str(exc):  # the ceiling answers every path
                        return int(children[0])
            time.sleep(0.5)
        self.stop()
        raise SystemExit(f"server did not start in {START_S} s")

    def control(self, flag: str) -> None:
        subprocess.run(
            ["callgrind_control", flag, str(self.worker)], check=True, capture_output=True, timeout=60
        )

    def dump_total(self) -> int:
        before = set(glob.glob(f"{self.out}/cg.{self.worker}.*"))
        self.control("-d")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            new = set(glob.glob(f"{self.out}/cg.{self.worker}.*")) - before
            for path in new:
                text = Path(path).read_text(errors="replace")
                m = re.search(r"^summary: (\d+)", text, re.M)
                if m:
                    self.last_dump = path
                    return int(m.group(1))
            time.sleep(0.2)
        raise SystemExit("no dump from callgrind")

    def measure(self, request: bytes, n: int, conc: int, warmup: int, idle_per_s: float) -> float:
        """Instructions per request over n requests, less the idle rate over the time they took."""
        load(PORT, request, warmup, conc)
        self.control("-z")
        started = time.monotonic()
        bad = load(PORT, request, n, conc)
        elapsed = time.monotonic() - started
        total = self.dump_total()
        if bad:
            raise SystemExit(f"{bad} of {n} requests were not answered 200")
        return (total - idle_per_s * elapsed) / n

    def idle_per_s(self, seconds: float = 2.0) -> float:
        self.control("-z")
        time.sleep(seconds)
        return self.dump_total() / seconds

    def stop(self) -> None:
        children = subprocess.run(["pgrep", "-P", str(self.proc.pid)], capture_output=True, text=True)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for pid in children.stdout.split():  # granian's worker, should it outlive its parent
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        self.log.close()


def run_cells(
    work: Path, name: str, config: Path | None, key: str, kinds: list[str], concs: list[int], n: int
) -> dict[str, object]:
    server = Server(work, name, config)
    try:
        cells: dict[str, float] = {}
        load(PORT, request_bytes(kinds[0], key), 50, 1)  # first requests: imports, caches, key table
        idle = server.idle_per_s()
        for kind in kinds:
            for conc in concs:
                cells[f"{kind} c={conc}"] = server.measure(
                    request_bytes(kind, key), n, conc, max(100, n // 3), idle
                )
                if KEEP:
                    print(f"  dump: {server.last_dump}", flush=True)
                print(
                    f"  {name:10} {kind:10} c={conc:<3} {cells[f'{kind} c={conc}'] / 1000:8.1f}k instr/request",
                    flush=True,
                )
    finally:
        server.stop()
    return {"cells": cells, "idle_per_s": idle}


def start_mocks() -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        ["taskset", "-c", LOADGEN_CPU, sys.executable, str(Path(__file__).resolve()), "--mocks"],
        env={**os.environ, "PYTHONPATH": str(ROOT / "python")},
    )
    for _ in range(100):
        try:
            load(MOCK_JSON, request_bytes("json", "x"), 1, 1)
            return proc
        except OSError:
            time.sleep(0.1)
    raise SystemExit("mocks did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=600, help="requests per cell (after a warm-up of n/3)")
    parser.add_argument("--conc", default="1 16")
    parser.add_argument("--targets", default="ceiling default all")
    parser.add_argument("--kinds", default="json stream translated")
    parser.add_argument("--json-out", default="")
    parser.add_argument("--mocks", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mocks:
        mocks_main()
        return
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed: apt-get install -y valgrind")
    os.sched_setaffinity(0, {int(LOADGEN_CPU)})
    concs = [int(c) for c in args.conc.split()]
    kinds = args.kinds.split()
    work = Path(tempfile.mkdtemp(prefix="gatecore-cost-"))
    mocks = start_mocks()
    results: dict[str, dict[str, object]] = {}
    try:
        for target in args.targets.split():
            config, key = target_config(work, target)
            target_kinds = [k for k in kinds if target != "ceiling" or k != "translated"]
            results[target] = run_cells(work, target, config, key, target_kinds, concs, args.n)
    finally:
        mocks.terminate()
        mocks.wait(10)
    print_table(results, kinds, concs)
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(results, indent=1))
    if not KEEP:
        shutil.rmtree(work, ignore_errors=True)


def print_table(results: dict[str, dict[str, object]], kinds: list[str], concs: list[int]) -> None:
    cols = [f"{k} c={c}" for k in kinds for c in concs]
    ceiling = results.get("ceiling", {}).get("cells", {})
    print("\ninstructions per request (callgrind, the server's worker process; k = 1,000)\n")
    print("| target | " + " | ".join(cols) + " | idle/s |")
    print("|---|" + "---:|" * (len(cols) + 1))
    for target, res in results.items():
        cells = res["cells"]
        assert isinstance(cells, dict)
        row = []
        for col in cols:
            v = cells.get(col)
            if v is None:
                row.append("-")
                continue
            ratio = ""
            base = ceiling.get(col.replace("translated", "stream")) if isinstance(ceiling, dict) else None
            if target != "ceiling" and base:
                ratio = f" ({v / base:.2f}x)"
            row.append(f"{v / 1000:.1f}k{ratio}")
        print(f"| {target} | " + " | ".join(row) + f" | {float(res['idle_per_s']) / 1000:.0f}k |")  # type: ignore[arg-type]
    print(
        "\n(x: instructions over the ceiling's for the same mode and concurrency; translated over stream's)"
    )


if __name__ == "__main__":
    main()
