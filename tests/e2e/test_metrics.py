"""`GET /metrics`: known traffic through the real server, then exact counters and histogram counts in
the Prometheus exposition, with one worker and with two (one scrape sees every worker's requests)."""

from __future__ import annotations

import glob
import http.client
import os
import platform
import time
from dataclasses import dataclass
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

import gatecore

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .conftest import make_client
from .gateway import ALL_KEY, MASTER_KEY, TEAM_KEY, UPSTREAM_KEY, Gateway, GatewayFactory, standard_config
from .prometheus_text import Exposition, parse

ONE_RPM_KEY = "sk-metrics-one-rpm-e2e-6d0c"
PROMPT = "the-quick-metrics-prompt-4471"
UNKNOWN_MODEL = "no-such-model-7f3a"  # a client's raw string: never a label
ODD_NAME_KEY = "sk-metrics-odd-name-e2e-91b2"
ODD_NAME = 'ops "blue"\\ team\nnext\tline \x01 é…'  # quotes, backslash, controls, UTF-8
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": f"{PROMPT} one two three"}]
DEPLOYMENT = "up/upstream-model-1"
BASE = {"model": "gpt-test", "deployment": DEPLOYMENT, "endpoint": "chat"}
GENAI = {"gen_ai_operation_name": "chat", "gen_ai_provider_name": "up", "gen_ai_request_model": "gpt-test"}


def metrics_config(upstream: MockUpstream, refused: RefusedPort, **telemetry: Any) -> dict[str, Any]:
    config = standard_config(upstream.base_url, refused.base_url)
    config["auth"]["keys"].append({"key": ONE_RPM_KEY, "name": "one-rpm", "rpm": 1})
    # Priced, so the cost counter has something to add: $1 per 1M input, $2 per 1M output tokens.
    for model in config["models"]:
        if model["name"] == "gpt-test":
            model["deployments"][0]["pricing"] = {"input_per_1m": 1.0, "output_per_1m": 2.0}
    if telemetry:
        config["telemetry"] = telemetry
    return config


def scrape(gw: Gateway, key: str | None = None) -> tuple[int, str, str]:
    """One scrape on a fresh connection: status, content type, body."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"authorization": f"Bearer {key}"} if key else {})
        response = conn.getresponse()
        return response.status, response.getheader("content-type") or "", response.read().decode()
    finally:
        conn.close()


@dataclass
class Traffic:
    """What the test sent and what the SDK saw."""

    ok: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    upstream_error: str = ""


def send_traffic(gw: Gateway, ok_requests: int) -> Traffic:
    """`ok_requests` plain chats and one stream on gpt-test, two upstream 500s, one request to gpt-other
    then one refused by its key's rpm, one unknown model. Each request on its own connection."""
    seen = Traffic()

    def usage(prompt: int, completion: int) -> None:
        seen.ok += 1
        seen.input_tokens += prompt
        seen.output_tokens += completion

    for _ in range(ok_requests):
        with make_client(gw) as client:
            answer = client.chat.completions.create(model="gpt-test", messages=MESSAGES)
            assert answer.usage is not None
            usage(answer.usage.prompt_tokens, answer.usage.completion_tokens)
    with make_client(gw) as client:
        stream = client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
            extra_body={"mock": {"chunks": 4}},
        )
        last = None
        for chunk in stream:
            last = chunk
        assert last is not None and last.usage is not None
        usage(last.usage.prompt_tokens, last.usage.completion_tokens)
    for _ in range(2):
        with make_client(gw) as client, pytest.raises(openai.InternalServerError):
            client.chat.completions.create(
                model="gpt-test", messages=MESSAGES, extra_body={"mock": {"status": 500}}
            )
    with make_client(gw, ONE_RPM_KEY) as client:
        client.chat.completions.create(model="gpt-other", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="gpt-other", messages=MESSAGES)
    with make_client(gw) as client, pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model=UNKNOWN_MODEL, messages=MESSAGES)
    return seen


def wait_for_requests(gw: Gateway, total: int) -> Exposition:
    """Scrape until every request is counted (other workers' figures are up to 0.5 s old)."""
    deadline = time.monotonic() + 10
    while True:
        status, content_type, body = scrape(gw)
        assert status == 200, body
        assert content_type.startswith("text/plain; version=0.0.4")
        metrics = parse(body)
        if metrics.total("gatecore_requests_total") == total or time.monotonic() > deadline:
            return metrics
        time.sleep(0.1)


def check_traffic(metrics: Exposition, seen: Traffic, ok_requests: int, body: str) -> None:
    requests = "gatecore_requests_total"
    assert metrics.value(requests, **BASE, status_class="2xx") == ok_requests + 1
    assert metrics.value(requests, **BASE, status_class="5xx") == 2
    other = {"model": "gpt-other", "deployment": "up/upstream-model-2", "endpoint": "chat"}
    assert metrics.value(requests, **other, status_class="2xx") == 1
    assert metrics.value(requests, **other, status_class="4xx") == 1
    assert (
        metrics.value(requests, model="unknown", deployment="none", endpoint="chat", status_class="4xx") == 1
    )
    assert metrics.total(requests) == ok_requests + 6
    assert metrics.value("gatecore_rejections_total", model="gpt-other", reason="rate_limit") == 1
    assert metrics.total("gatecore_rejections_total") == 1
    assert metrics.total("gatecore_upstream_errors_total", **BASE) == 2
    upstream_errors = {
        dict(ls)["error_type"] for n, ls in metrics.samples if n == "gatecore_upstream_errors_total"
    }
    assert upstream_errors == {"upstream_error"}
    assert metrics.label_values("error_type") == {"upstream_error", "rate_limit_exceeded", "model_not_found"}

    tokens = "gen_ai_client_token_usage"
    gpt_test_ok = ok_requests + 1
    assert metrics.value(f"{tokens}_count", **GENAI, gen_ai_token_type="input") == gpt_test_ok
    gpt_test_in = metrics.value(f"{tokens}_sum", **GENAI, gen_ai_token_type="input")
    gpt_test_out = metrics.value(f"{tokens}_sum", **GENAI, gen_ai_token_type="output")
    # The gpt-other request's usage is in `seen` too; both models answer the same prompt alike.
    assert gpt_test_in == seen.input_tokens * gpt_test_ok / seen.ok
    assert gpt_test_out == seen.output_tokens * gpt_test_ok / seen.ok
    assert metrics.value(f"{tokens}_bucket", **GENAI, gen_ai_token_type="input", le="+Inf") == gpt_test_ok
    cost = metrics.value("gatecore_cost_usd_total", **BASE)
    assert cost == pytest.approx(gpt_test_in * 1e-6 + gpt_test_out * 2e-6, rel=1e-9)

    duration = "gen_ai_client_operation_duration_seconds"
    assert metrics.value(f"{duration}_count", **GENAI) == gpt_test_ok
    assert metrics.value(f"{duration}_count", **GENAI, error_type="upstream_error") == 2
    assert metrics.total(f"{duration}_count") == ok_requests + 6
    assert metrics.value("gen_ai_server_time_to_first_token_seconds_count", **GENAI) == 1
    assert metrics.total("gen_ai_server_time_to_first_token_seconds_count") == 1
    assert metrics.value("gen_ai_server_time_per_output_token_seconds_count", **GENAI) == 1
    assert metrics.total("gatecore_overhead_seconds_count") == ok_requests + 6
    # Buckets are cumulative and end at the count.
    buckets = sorted(
        (float(dict(ls)["le"]), v)
        for (n, ls), v in metrics.samples.items()
        if n == f"{duration}_bucket"
        and dict(ls).get("gen_ai_request_model") == "gpt-test"
        and "error_type" not in dict(ls)
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)
    assert buckets[-1] == (float("inf"), gpt_test_ok)
    assert metrics.value("gatecore_requests_in_flight") == 0
    assert metrics.types[duration] == "histogram" and metrics.types[requests] == "counter"

    # Bounded labels: configured names only; no key, prompt text or client's unknown model string.
    for secret in (
        MASTER_KEY,
        TEAM_KEY,
        ALL_KEY,
        ONE_RPM_KEY,
        UPSTREAM_KEY,
        PROMPT,
        UNKNOWN_MODEL,
        "one-rpm",
        "sk-",
    ):
        assert secret not in body
    # Requests count under the models they were for; the breaker states list every configured one.
    traffic_models = {
        v for (n, ls) in metrics.samples for k, v in ls if k == "model" and n != "gatecore_deployment_state"
    }
    assert traffic_models == {"gpt-test", "gpt-other", "unknown"}


@pytest.mark.timeout(90)
def test_metrics_count_known_traffic_exactly(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(metrics_config(upstream, refused))
    status, _, body = scrape(gw)
    assert status == 200 and parse(body).total("gatecore_requests_total") == 0
    seen = send_traffic(gw, ok_requests=5)
    metrics = wait_for_requests(gw, 11)
    _, _, body = scrape(gw)
    check_traffic(parse(body), seen, 5, body)
    check_worker_processes(parse(body), gw, workers=1)
    # Neither does the access log carry a key or the prompt (its lines are written off the request
    # path: wait for all of them).
    deadline = time.monotonic() + 10
    while len(gw.access_log()) < 11 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(gw.access_log()) == 11
    log = gw.stdout()
    for secret in (MASTER_KEY, ONE_RPM_KEY, UPSTREAM_KEY, PROMPT):
        assert secret not in log
    assert metrics.total("gatecore_requests_total") == 11


@pytest.mark.timeout(120)
def test_metrics_add_up_every_worker(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(metrics_config(upstream, refused), workers=2)
    seen = send_traffic(gw, ok_requests=16)
    # A worker's figures reach the other workers' scrapes within telemetry.metrics_flush_s (0.5 s).
    time.sleep(0.8)
    # Both workers served some of it (each leaves its snapshot file), and every scrape, whichever
    # worker answers it, sees all of it.
    files = glob.glob(f"/dev/shm/gatecore-{gw.port}-*.metrics/*.json")
    assert len(files) == 2, files
    assert all(os.path.getsize(f) > 100 for f in files)
    for _ in range(6):
        _, _, body = scrape(gw)
        check_traffic(parse(body), seen, 16, body)
    check_worker_processes(parse(body), gw, workers=2)


def proc_stat(pid: int) -> list[str]:
    """/proc/<pid>/stat's fields from the 3rd (state) on, the command name skipped."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()


def check_worker_processes(metrics: Exposition, gw: Gateway, workers: int) -> None:
    """One `process_*` series per worker of this server, labelled by its pid, with its own figures."""
    assert (
        metrics.value(
            "gatecore_build_info", version=gatecore.__version__, python_version=platform.python_version()
        )
        == 1
    )
    pids = {int(pid) for (name, labels) in metrics.samples for key, pid in labels if key == "pid"}
    assert len(pids) == workers
    page, ticks = os.sysconf("SC_PAGE_SIZE"), os.sysconf("SC_CLK_TCK")
    with open("/proc/stat") as system:
        boot = next(int(line.split()[1]) for line in system if line.startswith("btime "))
    for pid in pids:
        stat = proc_stat(pid)
        assert int(stat[1]) == gw.proc.pid  # a worker of this server (its parent is `gatecore serve`)
        with open(f"/proc/{pid}/statm") as statm:
            rss = int(statm.read().split()[1]) * page
        shown = metrics.value("process_resident_memory_bytes", pid=str(pid))
        assert 20e6 < shown < 2e9 and 0.5 < shown / rss < 2, (shown, rss)
        assert metrics.value("process_virtual_memory_bytes", pid=str(pid)) >= shown
        cpu = metrics.value("process_cpu_seconds_total", pid=str(pid))
        assert 0 < cpu <= (int(stat[11]) + int(stat[12])) / ticks + 0.05  # utime + stime, read later
        assert metrics.value("process_start_time_seconds", pid=str(pid)) == pytest.approx(
            boot + int(stat[19]) / ticks, abs=0.02
        )
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        assert 5 <= metrics.value("process_open_fds", pid=str(pid)) <= fds + 16
        assert metrics.value("process_max_fds", pid=str(pid)) >= 256


@pytest.mark.timeout(60)
def test_metrics_auth_needs_the_master_key(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(metrics_config(upstream, refused, metrics_auth=True))
    status, _, body = scrape(gw)
    assert status == 401 and '"code":"missing_api_key"' in body
    assert MASTER_KEY not in body
    assert scrape(gw, "sk-wrong-key-0000")[0] == 401
    status, _, body = scrape(gw, ALL_KEY)
    assert status == 403 and ALL_KEY not in body
    status, _, body = scrape(gw, MASTER_KEY)
    assert status == 200 and "# TYPE gatecore_requests_total counter" in body


@pytest.mark.timeout(60)
def test_metrics_off_answers_404(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    gw = gateway_factory(metrics_config(upstream, refused, metrics=False))
    assert scrape(gw)[0] == 404
    with make_client(gw) as client:
        assert client.chat.completions.create(model="gpt-test", messages=MESSAGES).usage is not None


@pytest.mark.timeout(60)
def test_access_log_lines_carry_key_prefix_cost_ttft_and_attempts(
    gateway_factory: GatewayFactory, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = metrics_config(upstream, refused)
    config["auth"]["keys"].append({"key": ODD_NAME_KEY, "name": ODD_NAME})
    # gpt-fallback fails at the refused port, then is answered by gpt-test: two attempts.
    config["models"].append(
        {
            "name": "gpt-fallback",
            "deployments": [{"provider": "down", "model": "m"}],
            "fallbacks": ["gpt-test"],
        }
    )
    gw = gateway_factory(config)
    with make_client(gw) as client:
        plain = client.chat.completions.with_raw_response.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": "log-plain"}
        )
        usage = plain.parse().usage
        assert usage is not None
        stream = client.chat.completions.create(
            model="gpt-test",
            messages=MESSAGES,
            stream=True,
            extra_body={"mock": {"first_byte_delay_ms": 40, "chunks": 3}},
            extra_headers={"x-request-id": "log-stream"},
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        client.chat.completions.create(
            model="gpt-fallback", messages=MESSAGES, extra_headers={"x-request-id": "log-fallback"}
        )
    entry = gw.wait_access_log("log-plain")
    assert entry["key"] == "master" and entry["attempts"] == 1
    assert entry["trace_id"] is None and entry["span_id"] is None  # tracing is off
    prefix = entry["key_prefix"]
    assert prefix.endswith("…") and MASTER_KEY.startswith(prefix[:-1]) and len(prefix) < len(MASTER_KEY) - 4
    expected_cost = usage.prompt_tokens * 1e-6 + usage.completion_tokens * 2e-6
    assert entry["cost_usd"] == pytest.approx(expected_cost, rel=1e-9)
    assert entry["ttft_ms"] <= entry["latency_ms"]
    # Times are shown in their units: the wall clock in s, durations in ms, to three decimals.
    assert abs(entry["ts"] - time.time()) < 60
    assert 0 < entry["overhead_ms"] <= entry["latency_ms"] < 60_000
    streamed = gw.wait_access_log("log-stream")
    assert streamed["streamed"] and 40 <= streamed["ttft_ms"] <= streamed["latency_ms"]
    fallback = gw.wait_access_log("log-fallback")
    assert fallback["attempts"] == 2 and fallback["status"] == 200
    assert fallback["cost_usd"] == pytest.approx(expected_cost, rel=1e-9)
    # Names are the admin's text: quotes, backslashes, control characters and UTF-8 stay one line
    # of valid JSON, read back exactly.
    with make_client(gw, key=ODD_NAME_KEY) as client:
        client.chat.completions.create(
            model="gpt-test", messages=MESSAGES, extra_headers={"x-request-id": "log-odd"}
        )
    assert gw.wait_access_log("log-odd")["key"] == ODD_NAME
    log = gw.stdout()
    for secret in (MASTER_KEY, UPSTREAM_KEY, PROMPT):
        assert secret not in log
    # In the metrics, the fallback counts under the model asked for, with the deployment that served it.
    metrics = wait_for_requests(gw, 3)
    served = {"model": "gpt-fallback", "deployment": DEPLOYMENT, "endpoint": "chat", "status_class": "2xx"}
    assert metrics.value("gatecore_requests_total", **served) == 1
