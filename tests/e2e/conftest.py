"""Fixtures of the end-to-end suite: the mock OpenAI upstream, gatecore servers, SDK clients."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from ..services.postgres import PostgresServer, running_postgres
from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .gateway import MASTER_KEY, Gateway, GatewayFactory, running_gateway, standard_config, write_config


def new_request_id() -> str:
    return f"e2e-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def upstream() -> Iterator[MockUpstream]:
    with MockUpstream() as mock:
        yield mock


@pytest.fixture(scope="session")
def refused() -> Iterator[RefusedPort]:
    port = RefusedPort()
    try:
        yield port
    finally:
        port.close()


@pytest.fixture(scope="session")
def gateway(
    upstream: MockUpstream, refused: RefusedPort, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    """One gatecore on the standard config, shared by the session (tests tell their requests apart by
    x-request-id)."""
    workdir = tmp_path_factory.mktemp("gateway")
    config = standard_config(upstream.base_url, refused.base_url)
    path = write_config(config, workdir / "gatecore.yaml")
    with running_gateway(["--config", str(path)], workdir, config=config) as gw:
        yield gw


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[GatewayFactory]:
    """Start extra gateways: ``gateway_factory(config_dict, workers=2)`` or ``gateway_factory(None,
    extra_args=["--demo"])``; all are stopped after the test."""
    with contextlib.ExitStack() as stack:
        counter = iter(range(1_000_000))

        def start(
            config: dict[str, Any] | None,
            *,
            workers: int | None = None,
            extra_args: list[str] | None = None,
            env: dict[str, str] | None = None,
            ready_path: str = "/readyz",
        ) -> Gateway:
            workdir = tmp_path / f"gw{next(counter)}"
            workdir.mkdir()
            args: list[str] = []
            if config is not None:
                args += ["--config", str(write_config(config, workdir / "gatecore.yaml"))]
            if workers is not None:
                args += ["--workers", str(workers)]
            args += extra_args or []
            return stack.enter_context(
                running_gateway(args, workdir, config=config, env=env, ready_path=ready_path)
            )

        yield start


def make_client(gw: Gateway, key: str = MASTER_KEY, **kwargs: Any) -> openai.OpenAI:
    kwargs.setdefault("timeout", 20.0)
    return openai.OpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0, **kwargs)


def wait_keys_loaded(gw: Gateway, keys: list[str]) -> None:
    """Until the worker knows every new key (GET /v1/models is not an inference request: no row)."""
    deadline = time.monotonic() + 5
    for key in keys:
        with make_client(gw, key) as client:
            while True:
                try:
                    client.models.list()
                    break
                except openai.AuthenticationError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)


def make_async_client(gw: Gateway, key: str = MASTER_KEY, **kwargs: Any) -> openai.AsyncOpenAI:
    kwargs.setdefault("timeout", 20.0)
    return openai.AsyncOpenAI(base_url=gw.openai_base_url, api_key=key, max_retries=0, **kwargs)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    """An OpenAI SDK client on the shared gateway with the master key."""
    with make_client(gateway) as c:
        yield c


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL for the session (each test takes a fresh database from it)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Tests taking this run twice: on a SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()
