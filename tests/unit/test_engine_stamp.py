"""The reproducibility stamp (routing/engine_stamp.py) from each engine's own answers."""

from __future__ import annotations

import json

from gatecore.routing.engine_load import parse_metrics
from gatecore.routing.engine_stamp import engine_family, stamp

from ..upstreams.replica_mock import sglang_metrics, tgi_metrics, vllm_metrics


def test_engine_family_from_metric_names() -> None:
    assert engine_family(parse_metrics(vllm_metrics(1, 0))) == "vllm"
    assert engine_family(parse_metrics(sglang_metrics(1, 0))) == "sglang"
    assert engine_family(parse_metrics(tgi_metrics(1, 0))) == "tgi"
    assert engine_family(parse_metrics("process_cpu_seconds_total 3\n")) is None


def test_vllm_version_and_model_list() -> None:
    models = {
        "data": [
            {"id": "other", "root": "x/y"},
            {"id": "m", "root": "meta/Llama-3.1-8B", "revision": "5206a32"},
        ]
    }
    assert (
        stamp("vllm", b'{"version": "0.6.3.post1"}', json.dumps(models).encode(), "m")
        == "vllm/0.6.3.post1 meta/Llama-3.1-8B@5206a32"
    )


def test_tgi_info_and_unknowns() -> None:
    info = b'{"model_id": "org/model", "model_sha": "abc123", "version": "3.0.1"}'
    assert stamp("tgi", info, None, "tgi") == "tgi/3.0.1 org/model@abc123"
    assert stamp(None, None, None, "m") is None
    assert stamp("sglang", b"not json", b"[]", "m") == "sglang"


def test_engine_strings_are_bounded_and_header_safe() -> None:
    hostile = json.dumps({"version": "1.0\r\nx-evil: 1 " + "v" * 500}).encode()
    served = stamp("vllm", hostile, None, "m")
    assert served is not None
    assert "\r" not in served and "\n" not in served and " x-evil" not in served
    assert len(served) <= 200
