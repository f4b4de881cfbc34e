"""Config loading under Hypothesis (issue 25): any document, however wrong, either loads or is refused
with ConfigError listing `path: reason` lines; nothing else escapes (no TypeError, OverflowError, …),
so `gatecore check` and a reload always say what is wrong instead of crashing.

Bounded in CI (derandomized, GATECORE_FUZZ_EXAMPLES examples, 150 by default); raise it to search longer.
"""

from __future__ import annotations

import math
import os
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gatecore.config.load import ConfigError, load_config
from gatecore.config.schema import GatecoreConfig

EXAMPLES = int(os.environ.get("GATECORE_FUZZ_EXAMPLES", "150"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["openai", "anthropic", "${UNSET_VAR}", "${X:-1}", "http://127.0.0.1:1/v1", "sk-x", ""]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
SECTIONS = [
    "server",
    "providers",
    "models",
    "auth",
    "limits",
    "budgets",
    "routing",
    "cache",
    "store",
    "telemetry",
]
FIELDS = {
    "server": [
        "port",
        "workers",
        "max_body_bytes",
        "body_read_timeout_s",
        "disconnect_watch_after",
        "timeouts",
    ],
    "providers": ["name", "kind", "base_url", "api_key", "headers", "responses"],
    "models": ["name", "deployments", "timeouts", "fallbacks", "retries"],
    "auth": ["master_key", "keys", "unauthenticated"],
}


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly the right shape (known sections and fields) with wrong values, sometimes anything."""
    doc: dict[str, Any] = {}
    for section in draw(st.lists(st.sampled_from(SECTIONS), max_size=5, unique=True)):
        fields = FIELDS.get(section)
        if fields is None:
            doc[section] = draw(values)
            continue
        entry = {f: draw(values) for f in draw(st.lists(st.sampled_from(fields), max_size=4, unique=True))}
        doc[section] = [entry] if section in ("providers", "models") and draw(st.booleans()) else entry
    if draw(st.integers(0, 9)) == 0:
        doc[draw(st.text(max_size=6))] = draw(values)
    return doc


@settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(documents())
def test_any_document_loads_or_is_refused_with_paths(doc: dict[str, Any]) -> None:
    try:
        config = load_config(doc, env={"X": "2"})
    except ConfigError as exc:
        assert exc.errors
        assert all(isinstance(e, str) and ": " in e for e in exc.errors), exc.errors
        return
    assert isinstance(config, GatecoreConfig)
    assert math.isfinite(config.server.disconnect_watch_after)


@settings(max_examples=EXAMPLES, derandomize=True, deadline=None)
@given(values)
def test_any_root_value_is_refused_or_loaded(raw: Any) -> None:
    try:
        load_config(raw, env={})
    except ConfigError as exc:
        assert exc.errors
