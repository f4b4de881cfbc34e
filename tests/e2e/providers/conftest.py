"""Parametrizes the shared conformance cases a provider module imports by that module's ``SUITE``."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from ..conftest import make_client
from .conformance import Suite, Target


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
