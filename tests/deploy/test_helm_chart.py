"""The Helm chart (deploy/helm/gatecore): `helm lint`, `helm template` validated by kubeconform
(strict, offline schemas), what it renders, and its config served by a real gatecore.

Needs the pinned helm and kubeconform (`make deploy-tools`); see tools.py.
"""

from __future__ import annotations

import http.client
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from gatecore.telemetry.metrics import FAMILIES

from ..e2e.admin_client import AdminClient
from ..e2e.gateway import MASTER_KEY, running_gateway
from ..services.postgres import running_postgres
from ..services.redis import running_redis
from .tools import REPO_ROOT, kubeconform, tool

CHART = REPO_ROOT / "deploy" / "helm" / "gatecore"
RELEASE = "gc"
SECRET_NAMES = ("GATECORE_MASTER_KEY", "GATECORE_KEY_SECRET", "GATECORE_STORE_URL", "GATECORE_REDIS_URL")
# Everything optional on: PostgreSQL, Redis, the ServiceMonitor, the HPA on CPU and in-flight requests.
ALL_ON = (
    "postgresql.enabled=true",
    "redis.enabled=true",
    "serviceMonitor.enabled=true",
    "serviceMonitor.bearerTokenSecret.name=gatecore",
    "serviceMonitor.bearerTokenSecret.key=master-key",
    "autoscaling.enabled=true",
    "autoscaling.inFlight.enabled=true",
    "secrets.providerKeys[0].name=OPENAI_API_KEY",
    "secrets.providerKeys[0].key=openai-api-key",
    "secrets.providerKeys[1].name=ANTHROPIC_API_KEY",
    "secrets.providerKeys[1].secretName=anthropic",
    "secrets.providerKeys[1].key=api-key",
)


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, timeout=120, check=False, cwd=REPO_ROOT
    )


def template(*sets: str) -> str:
    args = ["template", RELEASE, str(CHART), "--namespace", "ai"]
    for value in sets:
        args += ["--set", value]
    result = helm(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def by_kind(manifests: str) -> dict[str, dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    kinds = [d["kind"] for d in docs]
    assert len(kinds) == len(set(kinds)), kinds
    return {d["kind"]: d for d in docs}


def container(objects: dict[str, dict[str, Any]]) -> dict[str, Any]:
    containers = objects["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def env_of(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(objects)["env"]}


def test_helm_lint() -> None:
    for sets in ((), ALL_ON):
        args = ["lint", str(CHART), "--strict"]
        for value in sets:
            args += ["--set", value]
        result = helm(*args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("sets", [(), ALL_ON], ids=["defaults", "all-on"])
def test_template_is_valid_kubernetes(sets: tuple[str, ...], tmp_path: Path) -> None:
    manifests = template(*sets)
    # ServiceMonitor is a Prometheus Operator CRD: not in the Kubernetes schemas, checked below instead.
    summary = kubeconform(manifests, tmp_path, skip_kinds=("ServiceMonitor",))
    count = len([d for d in yaml.safe_load_all(manifests) if d])
    skipped = 1 if "serviceMonitor.enabled=true" in sets else 0
    assert f"Valid: {count - skipped}, Invalid: 0, Errors: 0, Skipped: {skipped}" in summary, summary


def test_defaults_render_probes_security_and_volumes() -> None:
    objects = by_kind(template())
    assert set(objects) == {"ServiceAccount", "ConfigMap", "Service", "Deployment", "PodDisruptionBudget"}
    c = container(objects)
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    # What gatecore writes has a volume: the store and spool, tempfile's dir, the shared counters.
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    assert {"/var/lib/gatecore", "/tmp", "/dev/shm", "/etc/gatecore"} <= set(mounts)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert c["resources"]["requests"]["cpu"]
    # The drain fits in the grace period: preStop sleep + shutdown_grace_s < terminationGracePeriodSeconds.
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    sleep = int(c["lifecycle"]["preStop"]["exec"]["command"][1])
    assert sleep + config["server"]["shutdown_grace_s"] < pod["terminationGracePeriodSeconds"]
    pdb = objects["PodDisruptionBudget"]["spec"]
    assert pdb["maxUnavailable"] == 1
    assert pdb["selector"]["matchLabels"] == objects["Deployment"]["spec"]["selector"]["matchLabels"]


def test_secrets_are_references_never_inline() -> None:
    for sets in ((), ALL_ON):
        objects = by_kind(template(*sets))
        assert "Secret" not in objects, "the chart never carries secret values"
        env = env_of(objects)
        for name, entry in env.items():
            if name in SECRET_NAMES or name.endswith("_API_KEY"):
                if name == "GATECORE_STORE_URL" and "postgresql.enabled=true" not in sets:
                    # SQLite in the state volume: a path, no credential in it.
                    assert entry["value"] == "sqlite:////var/lib/gatecore/gatecore.db"
                    continue
                assert "value" not in entry, f"{name} is inline"
                assert set(entry["valueFrom"]) == {"secretKeyRef"}, name
        # The config references the secrets; it holds none.
        text = objects["ConfigMap"]["data"]["config.yaml"]
        config = yaml.safe_load(text)
        assert config["auth"]["master_key"] == "${GATECORE_MASTER_KEY}"
        assert config["auth"]["key_hash_secret"] == "${GATECORE_KEY_SECRET}"
        assert config["store"]["url"] == "${GATECORE_STORE_URL}"


def test_all_on_renders_postgres_redis_hpa_and_service_monitor() -> None:
    objects = by_kind(template(*ALL_ON))
    env = env_of(objects)
    assert env["GATECORE_STORE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "gatecore-postgresql",
        "key": "url",
    }
    assert env["GATECORE_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {"name": "gatecore-redis", "key": "url"}
    assert env["OPENAI_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "gatecore", "key": "openai-api-key"}
    assert env["ANTHROPIC_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "anthropic", "key": "api-key"}
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    assert config["redis"]["url"] == "${GATECORE_REDIS_URL}"
    # The HPA owns the replica count, on CPU and on gatecore's in-flight gauge.
    assert "replicas" not in objects["Deployment"]["spec"]
    hpa = objects["HorizontalPodAutoscaler"]["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "gc-gatecore"}
    metrics = {m["type"]: m for m in hpa["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    assert metrics["Pods"]["pods"]["metric"]["name"] == "gatecore_requests_in_flight"
    monitor = objects["ServiceMonitor"]["spec"]
    endpoint = monitor["endpoints"][0]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    assert endpoint["authorization"]["credentials"] == {"name": "gatecore", "key": "master-key"}
    assert monitor["selector"]["matchLabels"] == objects["Service"]["spec"]["selector"]


def test_in_flight_metric_is_what_gatecore_exports() -> None:
    """The HPA's metric and the chart README's prometheus-adapter rule name a series gatecore has."""
    assert FAMILIES["gatecore_requests_in_flight"][0] == "gauge"
    assert "gatecore_requests_in_flight" in (CHART / "README.md").read_text()


def test_missing_secret_name_is_refused() -> None:
    result = helm("template", RELEASE, str(CHART), "--set", "secrets.existingSecret=")
    assert result.returncode != 0
    assert "secrets.existingSecret is required" in result.stderr


def test_rendered_config_serves_probes(tmp_path: Path) -> None:
    """The chart's config, as the ConfigMap holds it, runs a real gatecore: /healthz and /readyz
    answer 200 with the env the Deployment gives it (its paths moved into tmp_path)."""
    objects = by_kind(template())
    config = yaml.safe_load(objects["ConfigMap"]["data"]["config.yaml"])
    config["ledger"]["spool_dir"] = str(tmp_path / "spool")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {
        "GATECORE_MASTER_KEY": MASTER_KEY,
        "GATECORE_KEY_SECRET": "k" * 32,
        "GATECORE_STORE_URL": f"sqlite:///{tmp_path / 'gatecore.db'}",
    }
    with running_gateway(["--config", str(path)], tmp_path, env=env, ready_path="/readyz") as gw:
        for probe in ("/healthz", "/readyz"):
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=5)
            conn.request("GET", probe)
            assert conn.getresponse().status == 200, probe
            conn.close()
        assert MASTER_KEY not in gw.output()


def test_all_on_config_serves_two_replicas_on_postgres_and_redis(tmp_path: Path) -> None:
    """With postgresql and redis enabled, the chart's config as two pods run it (one PostgreSQL, one
    Redis, the URLs from the env the Deployment sets): a key created through one replica works on the
    other."""
    config = yaml.safe_load(by_kind(template(*ALL_ON))["ConfigMap"]["data"]["config.yaml"])
    with running_postgres() as postgres, running_redis() as redis:
        env = {
            "GATECORE_MASTER_KEY": MASTER_KEY,
            "GATECORE_KEY_SECRET": "h" * 32,
            "GATECORE_STORE_URL": postgres.create_database(),
            "GATECORE_REDIS_URL": redis.url,
        }
        replicas = []
        for name in ("a", "b"):
            workdir = tmp_path / name
            workdir.mkdir()
            pod_config = {**config, "ledger": {**config["ledger"], "spool_dir": str(workdir / "spool")}}
            path = workdir / "config.yaml"
            path.write_text(yaml.safe_dump(pod_config))
            replicas.append(running_gateway(["--config", str(path)], workdir, env=env))
        with replicas[0] as a, replicas[1] as b:
            key = AdminClient(a, MASTER_KEY).ok("POST", "/keys", {"name": "chart"}, 201)["key"]
            deadline = time.monotonic() + 5
            while True:  # b sees the key within its store poll interval
                status = _get(b.port, "/v1/models", key)
                if status == 200:
                    break
                assert status == 401 and time.monotonic() < deadline, status
                time.sleep(0.05)
            assert _get(b.port, "/v1/models", "gk-not-a-key") == 401


def _get(port: int, path: str, key: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"authorization": f"Bearer {key}"})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()
