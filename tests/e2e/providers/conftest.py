"""What every provider module gets from its tables: its ``mock`` and ``target`` fixtures (from its
``SETUP``), a ``client`` on its gateway, and the shared conformance cases parametrized by its ``SUITE``."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from ...upstreams.mock_server import MockServer
from ..conftest import make_client
from ..gateway import MASTER_KEY
from .conformance import Suite, Target
from .harness import Setup, gateway_for


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    suite = getattr(metafunc.module, "SUITE", None)
    assert isinstance(suite, Suite), f"{metafunc.module.__name__} runs shared cases but has no SUITE"
    cases = suite.cases(metafunc.function.__name__)
    assert cases, f"{metafunc.module.__name__} imports {metafunc.function.__name__} with no entry for it"
    metafunc.parametrize("case", list(cases.values()), ids=list(cases))


@pytest.fixture
def client(target: Target) -> Iterator[openai.OpenAI]:
    """An OpenAI SDK client on the module's gateway (``target``) with the master key."""
    with make_client(target.gw) as c:
        yield c


def _setup(request: pytest.FixtureRequest) -> Setup:
    setup = getattr(request.module, "SETUP", None)
    assert isinstance(setup, Setup), f"{request.module.__name__} has no SETUP"
    return setup


@pytest.fixture(scope="module")
def mock(request: pytest.FixtureRequest) -> Iterator[MockServer]:
    """The module's mock upstream (``SETUP.mock``)."""
    with _setup(request).mock() as upstream:
        yield upstream


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest, mock: MockServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Target]:
    """The module's gateway over its mock (``SETUP``)."""
    setup = _setup(request)
    with gateway_for(
        tmp_path_factory,
        setup.providers(mock),
        setup.models,
        env=setup.env,
        model_options=setup.model_options,
    ) as gw:
        yield Target(gw, mock, (*setup.secrets, MASTER_KEY))
