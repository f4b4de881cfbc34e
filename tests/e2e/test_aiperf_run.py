"""A real benchmark client through gatecore: aiperf (NVIDIA's LLM benchmark, from PyPI) streams chat
completions through the gateway to a paced loopback upstream with `x-gatecore-run-id`, and the run's
summary and export hold exactly aiperf's requests, with timings that agree with what aiperf measured.

aiperf lives in its own venv (`make test` creates `.venv-aiperf`, aiperf pinned; its dependencies
would not fit the main one). `GATECORE_AIPERF_VENV` names it; when `make` set it, a missing venv is an
error, otherwise the test is skipped. It runs offline: the tokenizer aiperf needs for its synthetic
prompts is trained on the spot (benches/aiperf_tokenizer.py), and HF_HUB_OFFLINE is left unset (it
breaks aiperf's loading of local tokenizer paths).
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from ..upstreams.openai_mock import MockUpstream
from .gateway import MASTER_KEY, REPO_ROOT, GatewayFactory, server_env
from .test_runs import admin_get, wait_run

REQUESTS = 16
# 12 tokens 5 ms apart after 20 ms; the finish, usage and [DONE] events right after the last token.
PACING = {"chunks": 12, "gap_ms": 5, "tail_gap_ms": 0, "first_byte_delay_ms": 20}


def aiperf_venv() -> Path:
    """The aiperf venv: $GATECORE_AIPERF_VENV (must exist), else `.venv-aiperf` (else skip)."""
    named = os.environ.get("GATECORE_AIPERF_VENV")
    venv = Path(named) if named else REPO_ROOT / ".venv-aiperf"
    if not (venv / "bin" / "aiperf").exists():
        if named:
            pytest.fail(f"GATECORE_AIPERF_VENV={named} has no bin/aiperf: run `make aiperf-venv`")
        pytest.skip("aiperf is not installed: `make aiperf-venv` creates .venv-aiperf")
    return venv


def run_aiperf(venv: Path, base_url: str, run_id: str, tokenizer: Path, artifacts: Path) -> dict[str, Any]:
    env = {k: v for k, v in server_env().items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    command = [
        str(venv / "bin" / "aiperf"), "profile",
        "--model", "tiny-paced", "--url", base_url, "--endpoint-type", "chat", "--streaming",
        "--tokenizer", str(tokenizer), "--use-server-token-count",
        "--no-server-metrics", "--no-gpu-telemetry", "--ui-type", "none",
        "--request-count", str(REQUESTS), "--concurrency", "2",
        "--prompt-input-tokens-mean", "24", "--output-tokens-mean", str(PACING["chunks"]),
        "--api-key", MASTER_KEY, "--header", f"x-gatecore-run-id:{run_id}",
        # The OpenAI provider forwards the body as it is, so the loopback upstream's pacing rides along.
        "--extra-inputs", json.dumps({"mock": PACING}),
        "--random-seed", "7", "--artifact-dir", str(artifacts),
    ]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"aiperf failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads((artifacts / "profile_export_aiperf.json").read_text())
    return result


@pytest.mark.timeout(300)
def test_aiperf_run_is_exported_with_exactly_its_requests(
    gateway_factory: GatewayFactory, upstream: MockUpstream, tmp_path: Path
) -> None:
    venv = aiperf_venv()
    tokenizer = tmp_path / "tokenizer"
    trained = subprocess.run(
        [str(venv / "bin" / "python"), str(REPO_ROOT / "benches" / "aiperf_tokenizer.py"), str(tokenizer)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert trained.returncode == 0, trained.stderr[-2000:]
    gw = gateway_factory(
        {
            "providers": [
                {"name": "up", "kind": "openai", "base_url": upstream.base_url, "api_key": "${UP_KEY}"}
            ],
            "models": [{"name": "tiny-paced", "deployments": [{"provider": "up", "model": "up-paced"}]}],
            "auth": {"master_key": MASTER_KEY},
            "store": {"url": f"sqlite:///{tmp_path / 'store.db'}"},
            "ledger": {"flush_interval_s": 0.05},
        }
    )
    run_id = f"aiperf-{uuid.uuid4().hex[:8]}"
    summary_aiperf = run_aiperf(venv, gw.base_url, run_id, tokenizer, tmp_path / "aiperf")
    assert summary_aiperf["request_count"]["avg"] == REQUESTS
    assert summary_aiperf["error_summary"] == [] and summary_aiperf["request_error_rate"]["avg"] == 0
    assert summary_aiperf["was_cancelled"] is False
    records = [
        json.loads(line) for line in (tmp_path / "aiperf" / "profile_export.jsonl").read_text().splitlines()
    ]
    theirs = {r["metadata"]["x_request_id"]: r["metrics"] for r in records}
    assert len(theirs) == REQUESTS

    summary = wait_run(gw, run_id, REQUESTS)
    assert summary["requests"] == REQUESTS and summary["errors"] == 0
    assert summary["output_tokens"] == sum(m["usage_completion_tokens"]["value"] for m in theirs.values())
    assert summary["input_tokens"] == sum(m["usage_prompt_tokens"]["value"] for m in theirs.values())
    assert summary["ttft_ms"]["count"] == summary["itl_ms"]["count"] == REQUESTS
    status, _, body = admin_get(gw, f"/runs/{run_id}/requests?format=json")
    assert status == 200
    ours = {r["request_id"]: r for r in json.loads(body)["data"]}
    assert set(ours) == set(theirs)  # aiperf's X-Request-ID is gatecore's request id: exactly its requests
    status, _, body = admin_get(gw, f"/runs/{run_id}/requests?format=csv")
    lines = list(csv.reader(io.StringIO(body.decode())))
    assert status == 200 and {line[0] for line in lines[1:]} == set(theirs) and len(lines) == REQUESTS + 1

    for rid, row in ours.items():
        metrics = theirs[rid]
        assert row["status"] == 200 and row["error_type"] is None and row["streamed"] is True
        assert row["output_tokens"] == metrics["usage_completion_tokens"]["value"] == PACING["chunks"]
        # gatecore's clock starts after aiperf's and its first write comes (give or take the socket)
        # before aiperf reads it. The ends differ: aiperf stops at the last token, gatecore after the
        # finish, usage and [DONE] events that follow it.
        their_ttft, their_latency = (
            metrics["time_to_first_token"]["value"],
            metrics["request_latency"]["value"],
        )
        assert PACING["first_byte_delay_ms"] <= row["ttft_ms"] <= their_ttft + 5.0, rid
        assert row["ttft_ms"] < row["latency_ms"], rid
        assert abs(row["latency_ms"] - their_latency) <= 10.0 + 0.1 * their_latency, rid
        assert 0 < row["overhead_ms"] < row["ttft_ms"]
        # Role, 12 content chunks, finish, usage, [DONE]: 16 writes; aiperf may read several as one.
        assert metrics["http_req_chunks_received"]["value"] <= row["chunk_gaps"] + 1 <= 16, rid
        assert row["gap_p50_ms"] >= PACING["gap_ms"] * 0.9 and row["gap_max_ms"] >= row["gap_p99_ms"]
        # Inter-token latency as aiperf defines it, from both ends of the same stream: per request
        # loosely (a client stalled by a loaded machine moves its own reading of one stream), and
        # over the run within 1 ms.
        their_itl = metrics["inter_token_latency"]["value"]
        assert abs(row["itl_ms"] - their_itl) <= 2.0 + 0.5 * their_itl, (rid, row["itl_ms"], their_itl)
    their_mean = summary_aiperf["inter_token_latency"]["avg"]
    assert abs(summary["itl_ms"]["mean"] - their_mean) <= 1.0, (summary["itl_ms"], their_mean)
