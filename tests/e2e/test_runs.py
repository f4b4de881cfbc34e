"""Benchmark runs end to end, on SQLite and a real PostgreSQL: requests tagged by `x-gatecore-run-id`
(or by their key's `run_id` metadata) are summarised by `GET /admin/v1/runs/{id}` and exported per
request (CSV and JSON) with the timings the client saw: TTFT, inter-chunk gaps, the overhead header.
"""

from __future__ import annotations

import asyncio
import csv
import http.client
import io
import json
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from gatecore.ledger.repository import LedgerRepository
from gatecore.store import open_store

from ..upstreams.openai_mock import MockUpstream
from .conftest import make_client
from .gateway import MASTER_KEY, Gateway, GatewayFactory, run_cli, write_config
from .ledger_store import ledger_row

RUN = "bench-A:1"
STREAM = {"chunks": 5, "gap_ms": 8, "first_byte_delay_ms": 30}
EXPORT_COLUMNS = [
    "request_id", "at", "model", "deployment", "key_name", "team_name", "status", "error_type",
    "streamed", "input_tokens", "output_tokens", "ttft_ms", "latency_ms", "itl_ms", "overhead_ms",
    "chunk_gaps", "gap_mean_ms", "gap_p50_ms", "gap_p99_ms", "gap_max_ms",
]  # fmt: skip


def runs_config(upstream: MockUpstream, store_url: str) -> dict[str, Any]:
    return {
        "providers": [
            {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
        ],
        "models": [{"name": "gpt-run", "deployments": [{"provider": "up", "model": "up-run"}]}],
        "auth": {"master_key": MASTER_KEY, "key_hash_secret": "runs-hash-secret-0123456789"},
        "store": {"url": store_url},
        "ledger": {"flush_interval_s": 0.05},
    }


def send(client: openai.OpenAI, kind: str, run: str | None) -> dict[str, Any]:
    """One request; what the client saw (request id, kind, the overhead header)."""
    rid = f"runs-{kind}-{uuid.uuid4().hex[:10]}"
    headers = {"x-request-id": rid, **({"x-gatecore-run-id": run} if run else {})}
    messages: Any = [{"role": "user", "content": f"run {kind} {rid[-4:]}"}]
    mock: dict[str, Any] = {"ok": {}, "stream": STREAM, "error": {"status": 500}}[kind]
    try:
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-run",
            messages=messages,
            stream=kind == "stream",
            extra_headers=headers,
            extra_body={"mock": mock},
        )
    except openai.InternalServerError:
        return {"rid": rid, "kind": kind, "overhead": None}
    answer = raw.parse()
    if kind == "stream":
        assert sum(1 for _ in answer) > 5
    return {"rid": rid, "kind": kind, "overhead": float(raw.headers["x-gatecore-overhead-ms"])}


def admin_get(gw: Gateway, path: str, key: str = MASTER_KEY) -> tuple[int, str, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=20)
    try:
        conn.request("GET", "/admin/v1" + path, headers={"authorization": f"Bearer {key}"})
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read()
    finally:
        conn.close()


def wait_run(gw: Gateway, run: str, requests: int, key: str = MASTER_KEY) -> dict[str, Any]:
    """The run's summary once the ledger holds `requests` of its rows (rows are written in batches)."""
    deadline = time.monotonic() + 15
    while True:
        status, _, body = admin_get(gw, f"/runs/{run}", key)
        if status == 200 and json.loads(body)["requests"] >= requests:
            summary: dict[str, Any] = json.loads(body)
            return summary
        assert time.monotonic() < deadline, (status, body)
        time.sleep(0.1)


@pytest.fixture
def traffic(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str
) -> Iterator[tuple[Gateway, dict[str, dict[str, Any]], dict[str, Any]]]:
    """A run of 6 streams, 3 whole answers and 1 upstream error, beside another run and untagged
    requests; the run's requests by id."""
    config = runs_config(upstream, store_url)
    gw = gateway_factory(config)
    sent: dict[str, dict[str, Any]] = {}
    with make_client(gw) as client:
        for kind in ("stream", "ok", "stream", "error", "stream", "ok", "stream", "stream", "ok", "stream"):
            record = send(client, kind, RUN)
            sent[record["rid"]] = record
        send(client, "ok", "bench-B")
        send(client, "stream", None)
    for record in sent.values():
        recorded = upstream.wait_for(record["rid"])
        if record["kind"] == "ok":
            record["usage"] = recorded.response_json["usage"]
        elif record["kind"] == "stream":
            record["usage"] = next(e["usage"] for e in recorded.event_objects() if e.get("usage"))
        else:
            record["usage"] = {"prompt_tokens": 0, "completion_tokens": 0}
    yield gw, sent, config


def linear(values: list[float], p: float) -> float:
    """numpy's default percentile (Python's `inclusive` quantiles are the same method)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(p * 100) - 1]


def test_run_summary_and_export_hold_exactly_the_runs_requests(
    traffic: tuple[Gateway, dict[str, dict[str, Any]], dict[str, Any]],
) -> None:
    gw, sent, _ = traffic
    summary = wait_run(gw, RUN, len(sent))
    status, content_type, body = admin_get(gw, f"/runs/{RUN}/requests?format=json")
    assert status == 200 and content_type.startswith("application/json")
    exported = json.loads(body)
    assert exported["run_id"] == RUN
    rows = {r["request_id"]: r for r in exported["data"]}
    assert set(rows) == set(sent) and len(exported["data"]) == len(sent)
    assert [r["at"] for r in exported["data"]] == sorted(r["at"] for r in exported["data"])

    for rid, record in sent.items():
        row, kind = rows[rid], record["kind"]
        usage = record["usage"]
        assert (row["input_tokens"], row["output_tokens"]) == (
            usage["prompt_tokens"],
            usage["completion_tokens"],
        )
        assert row["streamed"] is (kind == "stream") and row["model"] == "gpt-run"
        assert row["deployment"] == "up/up-run" and row["key_name"] == "master"
        if kind == "error":
            assert row["status"] == 500 and row["error_type"] == "upstream_error"
            continue
        # The overhead the client was told in x-gatecore-overhead-ms is the one exported.
        assert row["overhead_ms"] == pytest.approx(record["overhead"], abs=0.0011)
        assert 0 < row["overhead_ms"] < row["latency_ms"]
        if kind == "ok":
            assert row["chunk_gaps"] is None and row["itl_ms"] is None
            continue
        # Streams: the upstream waited 30 ms before its head, then 8 ms between events.
        assert 30 <= row["ttft_ms"] < row["latency_ms"]
        assert 5 <= row["chunk_gaps"] <= 7  # 8 writes at most (the usage chunk is hidden), 7 gaps
        assert 7.0 <= row["gap_p50_ms"] <= row["gap_p99_ms"] <= row["gap_max_ms"]
        # The gaps add up to the time from the first write to the last: at least the upstream's 8 sleeps
        # (one of them slept behind the hidden usage chunk) less one, should the first write be late.
        span = row["gap_mean_ms"] * row["chunk_gaps"]
        assert 7 * 8 <= span <= row["latency_ms"] - row["ttft_ms"] + 0.01
        expected_itl = (row["latency_ms"] - row["ttft_ms"]) / (row["output_tokens"] - 1)
        assert row["itl_ms"] == pytest.approx(expected_itl, abs=0.0011)

    ok = [r for r in rows.values() if r["status"] == 200]
    streams = [r for r in ok if r["streamed"]]
    assert summary["run_id"] == RUN
    assert summary["requests"] == len(sent) and summary["errors"] == 1
    assert summary["input_tokens"] == sum(r["usage"]["prompt_tokens"] for r in sent.values())
    assert summary["output_tokens"] == sum(r["usage"]["completion_tokens"] for r in sent.values())
    first = min(r["at"] for r in rows.values())
    last = max(r["at"] + r["latency_ms"] / 1000 for r in rows.values())
    assert summary["first_at"] == pytest.approx(first, abs=1e-6)
    assert summary["duration_s"] == pytest.approx(last - first, abs=1e-5)
    assert summary["requests_per_s"] == pytest.approx(len(sent) / (last - first), rel=1e-3)
    assert summary["output_tokens_per_s"] == pytest.approx(
        summary["output_tokens"] / (last - first), rel=1e-3
    )
    for figure, values in (
        ("ttft_ms", [r["ttft_ms"] for r in streams]),
        ("latency_ms", [r["latency_ms"] for r in ok]),
        ("itl_ms", [r["itl_ms"] for r in streams]),
        ("overhead_ms", [r["overhead_ms"] for r in rows.values() if r["overhead_ms"] is not None]),
    ):
        got = summary[figure]
        assert got["count"] == len(values), figure
        assert got["mean"] == pytest.approx(statistics.fmean(values), abs=0.0011), figure
        assert (got["min"], got["max"]) == (min(values), max(values)), figure
        for p in (0.5, 0.9, 0.99):
            assert got[f"p{round(p * 100)}"] == pytest.approx(linear(values, p), abs=0.0011), (figure, p)

    status, content_type, body = admin_get(gw, f"/runs/{RUN}/requests?format=csv")
    assert status == 200 and content_type.startswith("text/csv")
    lines = list(csv.reader(io.StringIO(body.decode())))
    assert lines[0] == EXPORT_COLUMNS
    assert [line[0] for line in lines[1:]] == [r["request_id"] for r in exported["data"]]
    for line in lines[1:]:
        row = rows[line[0]]
        assert line[8] == ("true" if row["streamed"] else "false")
        assert float(line[11] or "nan") == pytest.approx(
            row["ttft_ms"] if row["ttft_ms"] is not None else float("nan"), nan_ok=True
        )
        assert (line[15] or None) == (None if row["chunk_gaps"] is None else str(row["chunk_gaps"]))

    status, _, body = admin_get(gw, "/runs")
    assert status == 200
    listed = {r["run_id"]: r for r in json.loads(body)["data"]}
    assert listed[RUN]["requests"] == len(sent) and listed[RUN]["first_at"] == pytest.approx(first, abs=1e-6)
    assert "bench-B" in listed and len(listed) == 2  # the untagged request is in no run


def test_cli_show_and_export_match_the_api(
    traffic: tuple[Gateway, dict[str, dict[str, Any]], dict[str, Any]], tmp_path: Any
) -> None:
    gw, sent, config = traffic
    summary = wait_run(gw, RUN, len(sent))
    path = write_config(config, tmp_path / "cli.yaml")
    shown = run_cli(["runs", "show", RUN, "--config", str(path), "--format", "json"])
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == summary
    table = run_cli(["runs", "show", RUN, "--config", str(path)])
    assert table.returncode == 0 and f"{len(sent)} (1 errors)" in table.stdout and "ttft ms" in table.stdout
    exported = run_cli(["runs", "export", RUN, "--config", str(path), "--format", "csv"])
    _, _, api_csv = admin_get(gw, f"/runs/{RUN}/requests?format=csv")
    assert exported.returncode == 0 and exported.stdout == api_csv.decode()
    listed = run_cli(["runs", "list", "--config", str(path)])
    assert listed.returncode == 0 and RUN in listed.stdout and "bench-B" in listed.stdout
    missing = run_cli(["runs", "show", "no-such-run", "--config", str(path)])
    assert missing.returncode == 1 and "no run" in missing.stderr


def test_a_long_run_is_exported_page_by_page_with_every_request_once(
    gateway_factory: GatewayFactory, upstream: MockUpstream, store_url: str
) -> None:
    """2,500 rows (the export reads 1,000 a page), several sharing an arrival time (the keyset's tie
    on `id`), written straight into the ledger; the API's CSV and JSON hold each once, in order."""
    gw = gateway_factory(runs_config(upstream, store_url))
    count = 2500
    at = time.time() - 3600
    rows = []
    for i in range(count):
        row = ledger_row(
            id=f"cafe:{i:05x}",
            request_id=f"long-{i:05d}",
            at=at + (i // 3) * 0.001,  # three rows per arrival time
            model="gpt-run",
            input_tokens=3,
            output_tokens=1 + i % 7,
            latency_ms=50.0 + i % 11,
            ttft_ms=10.0 + i % 5,
            streamed=True,
            run_id="long-run",
        )
        rows.append(row)

    async def insert() -> None:
        store = await open_store(store_url)
        try:
            await LedgerRepository(store).insert(rows)
        finally:
            await store.close()

    asyncio.run(insert())
    summary = wait_run(gw, "long-run", count)
    assert summary["requests"] == count and summary["ttft_ms"]["count"] == count
    status, _, body = admin_get(gw, "/runs/long-run/requests?format=json")
    assert status == 200
    exported = [r["request_id"] for r in json.loads(body)["data"]]
    assert exported == [f"long-{i:05d}" for i in range(count)]
    status, _, body = admin_get(gw, "/runs/long-run/requests?format=csv")
    lines = body.decode().splitlines()
    assert status == 200 and len(lines) == count + 1
    assert [line.split(",", 1)[0] for line in lines[1:]] == exported
