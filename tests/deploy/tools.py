"""The deployment tools the tests/deploy checks run: helm, kubeconform and offline Kubernetes schemas.

`make deploy-tools` (called by .ci/run) installs them, pinned, into `.tools/`. A missing tool fails the
test with what to run; only `GATECORE_SKIP_DEPLOY_TOOLS=1`, set on purpose, skips instead.

kubeconform's default schema site cannot be reached offline, so the schemas come from the
kubernetes-validate wheel: its "local-strict" schemas point into one shared `_definitions.json` by an
absolute `$ref` that only that package resolves. `standalone_schemas` rewrites the ones a check needs
into self-contained files (`#/$defs/...`) that kubeconform reads from a local directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / ".tools"
SKIP_ENV = "GATECORE_SKIP_DEPLOY_TOOLS"
_DEFS_REF = "/api/_definitions.json#/$defs/"


def tool(name: str) -> str:
    """Path of `name` from .tools/bin (else PATH); fails, or skips only when SKIP_ENV=1."""
    local = TOOLS / "bin" / name
    found = str(local) if local.is_file() else shutil.which(name)
    if found:
        return found
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{name} is not installed and {SKIP_ENV}=1")
    pytest.fail(f"{name} is not installed: run `make deploy-tools` (or set {SKIP_ENV}=1 to skip)")


def schema_dir() -> Path:
    """The one `v<k8s>-local-strict` directory `make deploy-tools` extracted."""
    found = sorted((TOOLS / "k8s-schemas").glob("v*-local-strict"))
    if found:
        return found[-1]
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"no Kubernetes schemas in .tools/k8s-schemas and {SKIP_ENV}=1")
    pytest.fail("no Kubernetes schemas in .tools/k8s-schemas: run `make deploy-tools`")


def _rewrite_refs(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                "#/$defs/" + value[len(_DEFS_REF) :]
                if key == "$ref" and isinstance(value, str) and value.startswith(_DEFS_REF)
                else _rewrite_refs(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_rewrite_refs(item) for item in node]
    return node


def schema_file_name(doc: dict[str, Any]) -> str:
    """kubeconform's `{{.ResourceKind}}{{.KindSuffix}}`: `deployment-apps-v1`, `service-v1`."""
    group, _, version = str(doc["apiVersion"]).rpartition("/")
    suffix = f"-{group.split('.')[0]}-{version}" if group else f"-{version}"
    return f"{str(doc['kind']).lower()}{suffix}"


def standalone_schemas(docs: list[dict[str, Any]], out: Path) -> Path:
    """Self-contained schemas for the kinds in `docs` (those the source has), written to `out`."""
    source = schema_dir()
    out.mkdir(parents=True, exist_ok=True)
    definitions: dict[str, Any] | None = None
    for name in sorted({schema_file_name(doc) for doc in docs}):
        target = out / f"{name}.json"
        path = source / f"{name}.json"
        if target.exists() or not path.exists():
            continue  # an unknown kind: kubeconform reports it missing, the test says why
        if definitions is None:
            raw = json.loads((source / "_definitions.json").read_text())
            definitions = _rewrite_refs(raw["$defs"] if "$defs" in raw else raw["definitions"])
        schema = _rewrite_refs(json.loads(path.read_text()))
        schema["$defs"] = definitions
        target.write_text(json.dumps(schema))
    return out


def kubeconform(manifests: str, workdir: Path, skip_kinds: tuple[str, ...] = ()) -> str:
    """Validate `manifests` with `kubeconform -strict -summary`; returns its summary, fails on errors."""
    docs = [d for d in yaml.safe_load_all(manifests) if d]
    schemas = standalone_schemas([d for d in docs if d["kind"] not in skip_kinds], workdir / "schemas")
    args = [tool("kubeconform"), "-strict", "-summary", "-output", "text"]
    args += ["-schema-location", f"{schemas}/{{{{.ResourceKind}}}}{{{{.KindSuffix}}}}.json"]
    if skip_kinds:
        args += ["-skip", ",".join(skip_kinds)]
    result = subprocess.run(args, input=manifests, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, f"kubeconform failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout
