"""The gateway the edge tests share (one for the package): the standard config with a small body
limit, wildcard models, an upstream that closes idle connections, and one provider per scripted reply
of the raw-socket broken upstream."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ...upstreams.broken_upstream import BROKEN_REPLIES, ODD_REPLIES, BrokenUpstream
from ...upstreams.openai_mock import MockUpstream, RefusedPort
from ..gateway import FAST, SLOW, Gateway, running_gateway, standard_config, write_config
from .shared import IDLE_CLOSE_S, SMALL_LIMIT


@pytest.fixture(scope="package")
def idle_upstream() -> Iterator[MockUpstream]:
    """A mock that closes keep-alive connections idle for IDLE_CLOSE_S."""
    with MockUpstream(keepalive_timeout=IDLE_CLOSE_S) as mock:
        yield mock


@pytest.fixture(scope="package")
def broken() -> Iterator[BrokenUpstream]:
    with BrokenUpstream({**BROKEN_REPLIES, **ODD_REPLIES}) as server:
        yield server


@pytest.fixture(scope="package")
def edges_gateway(
    upstream: MockUpstream,
    refused: RefusedPort,
    idle_upstream: MockUpstream,
    broken: BrokenUpstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    """The standard config plus: ``server.max_body_bytes`` SMALL_LIMIT, ``up/*`` (any model at the mock),
    ``idle-test`` (the upstream that closes idle connections), ``broken-<reply>`` and ``odd-<reply>``
    for each scripted reply (long timeouts, so a hang shows as one)."""
    config = standard_config(upstream.base_url, refused.base_url, max_body_bytes=SMALL_LIMIT)
    config["providers"] += [
        {"name": "idle", "kind": "openai", "base_url": idle_upstream.base_url, "api_key": "sk-idle"},
        *(
            {"name": f"raw-{name}", "kind": "openai", "base_url": broken.base_url(name), "api_key": "sk-raw"}
            for name in [*BROKEN_REPLIES, *ODD_REPLIES]
        ),
    ]
    config["models"] += [
        {"name": "up/*", "deployments": [{"provider": "up", "model": "*"}], "timeouts": dict(FAST)},
        {
            "name": "idle-test",
            "deployments": [{"provider": "idle", "model": "upstream-model-1"}],
            "timeouts": dict(FAST),
        },
        *(
            {
                "name": f"broken-{name}",
                "deployments": [{"provider": f"raw-{name}", "model": "raw-model"}],
                "timeouts": dict(SLOW),
            }
            for name in BROKEN_REPLIES
        ),
        *(
            {
                "name": f"odd-{name}",
                "deployments": [{"provider": f"raw-{name}", "model": "raw-model"}],
                "timeouts": dict(SLOW),
            }
            for name in ODD_REPLIES
        ),
    ]
    workdir: Path = tmp_path_factory.mktemp("edges")
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gw:
        yield gw
