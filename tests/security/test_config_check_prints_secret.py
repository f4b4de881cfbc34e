"""Issue 17, low: `gatecore check` on a config with a YAML syntax error printed the offending line,
and the offending line is often the one holding a secret. It now names the problem, line and column
only."""

from __future__ import annotations

from pathlib import Path

from ..e2e.gateway import run_cli

SECRET = "sk-live-config-secret-e2e-6f0a"


def test_a_yaml_error_names_the_place_not_the_text(tmp_path: Path) -> None:
    config = tmp_path / "gatecore.yaml"
    # A stray quote makes the line with the master key unparseable.
    config.write_text(f'auth:\n  master_key: "{SECRET}\n  keys: []\nmodels: [\n')
    result = run_cli(["check", "--config", str(config)])
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "not valid YAML" in output and "line " in output, output
    assert SECRET not in output and SECRET[:12] not in output, output
