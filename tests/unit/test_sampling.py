"""The sampler's settings: the config's, else OTEL_TRACES_SAMPLER(_ARG)'s, else OpenTelemetry's
default (parentbased_always_on); values the specification does not allow are logged and ignored."""

from __future__ import annotations

import logging

import pytest

from gatecore.config.telemetry import TracingConfig
from gatecore.telemetry.sampling import Sampler, sampler_of

ON = TracingConfig(enabled=True)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Sampler(1.0, True)),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, Sampler(1.0, False)),
        ({"OTEL_TRACES_SAMPLER": "ALWAYS_OFF"}, Sampler(0.0, False)),
        ({"OTEL_TRACES_SAMPLER": "parentbased_always_off"}, Sampler(0.0, True)),
        ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}, Sampler(0.25, False)),
        (
            {"OTEL_TRACES_SAMPLER": " parentbased_traceidratio ", "OTEL_TRACES_SAMPLER_ARG": "0"},
            Sampler(0.0, True),
        ),
        # A ratio sampler without its argument keeps everything, as the specification's default says.
        ({"OTEL_TRACES_SAMPLER": "traceidratio"}, Sampler(1.0, False)),
        # The argument of a sampler that takes none is ignored.
        ({"OTEL_TRACES_SAMPLER": "always_off", "OTEL_TRACES_SAMPLER_ARG": "0.5"}, Sampler(0.0, False)),
    ],
)
def test_the_variables_choose_the_sampler(env: dict[str, str], expected: Sampler) -> None:
    assert sampler_of(ON, env) == expected


def test_the_config_wins_setting_by_setting() -> None:
    env = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    assert sampler_of(TracingConfig(enabled=True, sample_ratio=0.1), env) == Sampler(0.1, False)
    assert sampler_of(TracingConfig(enabled=True, parent_based=True), env) == Sampler(0.5, True)
    both = TracingConfig(enabled=True, sample_ratio=0.0, parent_based=False)
    assert sampler_of(both, {"OTEL_TRACES_SAMPLER": "parentbased_always_on"}) == Sampler(0.0, False)


@pytest.mark.parametrize(
    ("env", "expected", "said"),
    [
        ({"OTEL_TRACES_SAMPLER": "jaeger_remote"}, Sampler(1.0, True), "OTEL_TRACES_SAMPLER='jaeger_remote'"),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.5"},
            Sampler(1.0, False),
            "OTEL_TRACES_SAMPLER_ARG='1.5'",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "nan"},
            Sampler(1.0, True),
            "OTEL_TRACES_SAMPLER_ARG='nan'",
        ),
        (
            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "half"},
            Sampler(1.0, False),
            "OTEL_TRACES_SAMPLER_ARG='half'",
        ),
    ],
)
def test_what_the_specification_does_not_allow_is_logged_and_ignored(
    env: dict[str, str], expected: Sampler, said: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gatecore.telemetry"):
        assert sampler_of(ON, env) == expected
    assert said in caplog.text
