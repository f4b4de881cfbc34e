"""The plain Kubernetes manifests (deploy/kubernetes) and the systemd unit (deploy/systemd)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatecore.config.schema import ServerConfig

from ..e2e.gateway import MASTER_KEY, running_gateway
from .tools import REPO_ROOT, kubeconform

MANIFESTS = REPO_ROOT / "deploy" / "kubernetes"
UNIT = REPO_ROOT / "deploy" / "systemd" / "gatecore.service"


def manifests() -> str:
    return "".join(f"---\n{path.read_text()}" for path in sorted(MANIFESTS.glob("*.yaml")))


def objects() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(manifests()) if d}


def test_manifests_are_valid_kubernetes(tmp_path: Path) -> None:
    files = sorted(MANIFESTS.glob("*.yaml"))
    summary = kubeconform(manifests(), tmp_path)
    assert f"Valid: {len(files)}, Invalid: 0, Errors: 0, Skipped: 0" in summary, summary


def test_manifests_probe_and_reference_secrets() -> None:
    found = objects()
    assert {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} <= set(
        found
    )
    pod = found["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    for entry in container["env"]:
        if entry["name"] not in ("GATECORE_CONFIG", "TMPDIR"):
            assert "value" not in entry and "secretKeyRef" in entry["valueFrom"], entry["name"]
    secret_keys = set(found["Secret"]["stringData"])
    for entry in container["env"]:
        if "valueFrom" in entry:
            assert entry["valueFrom"]["secretKeyRef"]["key"] in secret_keys, (
                "the example Secret has every key"
            )
    metrics = {m["type"]: m for m in found["HorizontalPodAutoscaler"]["spec"]["metrics"]}
    assert metrics["Pods"]["pods"]["metric"]["name"] == "gatecore_requests_in_flight"


def test_manifest_config_serves(tmp_path: Path) -> None:
    """The ConfigMap's config runs a real gatecore with the Deployment's env (paths moved to tmp)."""
    config = yaml.safe_load(objects()["ConfigMap"]["data"]["config.yaml"])
    config["ledger"]["spool_dir"] = str(tmp_path / "spool")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        "GATECORE_MASTER_KEY": MASTER_KEY,
        "GATECORE_KEY_SECRET": "s" * 32,
        "OPENAI_API_KEY": "sk-unused-in-this-test",
        "GATECORE_STORE_URL": f"sqlite:///{tmp_path / 'gatecore.db'}",
    }
    with running_gateway(["--config", str(path)], tmp_path, env=env, ready_path="/readyz") as gw:
        assert gw.alive()


def _unit_settings() -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        match = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if match:
            settings.setdefault(match.group(1), []).append(match.group(2))
    return settings


def test_systemd_unit_is_hardened() -> None:
    unit = _unit_settings()
    assert unit["DynamicUser"] == ["yes"] or "User" in unit
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "KillSignal": "SIGTERM",
        "PrivateTmp": "yes",
    }.items():
        assert unit[key] == [value], key
    assert "/var/lib/gatecore" in unit["ReadWritePaths"]
    assert unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    # The stop timeout leaves the drain its whole grace period.
    assert float(unit["TimeoutStopSec"][0]) > ServerConfig().shutdown_grace_s
    exec_start = unit["ExecStart"][0].split()
    assert exec_start[1] == "serve" and "--config" in exec_start


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not on this machine: the unit's syntax was not verified")
    # verify checks that ExecStart's binary exists: point it at this environment's gatecore.
    gatecore = Path(sys.executable).parent / "gatecore"
    if not gatecore.exists():
        gatecore = Path(sys.executable)
    unit = tmp_path / "gatecore.service"
    unit.write_text(UNIT.read_text().replace("/opt/gatecore/bin/gatecore", str(gatecore)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False
    )
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "gatecore.service" in line]
    assert result.returncode == 0 and not ours, result.stdout + result.stderr
