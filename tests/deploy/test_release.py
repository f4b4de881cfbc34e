"""Releases: `gatecore --version`, the CHANGELOG, and .github/workflows/release.yml against the
Makefile, Cargo.toml, rust-toolchain.toml and the Dockerfile."""

from __future__ import annotations

import re
import shutil
import subprocess
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from ..e2e.gateway import PYTHON, run_cli
from .tools import REPO_ROOT, tool

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "release.yml"


def cargo_version() -> str:
    value: str = tomllib.loads((REPO_ROOT / "Cargo.toml").read_text())["package"]["version"]
    return value


def workflow() -> dict[Any, Any]:
    doc: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    return doc


def steps_using(job: dict[str, Any], action: str) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).split("@")[0] == action]


def test_version_from_the_package_metadata() -> None:
    installed = version("gatecore")
    assert installed == cargo_version(), "the package takes its version from Cargo.toml"
    result = run_cli(["--version"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"gatecore {installed}"
    script = Path(PYTHON).parent / "gatecore"
    if script.exists():  # the console script, as installed
        result = subprocess.run(
            [str(script), "--version"], capture_output=True, text=True, timeout=30, check=False
        )
        assert result.stdout.strip() == f"gatecore {installed}"


def test_changelog_keeps_a_changelog() -> None:
    text = (REPO_ROOT / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog\n")
    assert "keepachangelog.com/en/1.1.0" in text
    headings = re.findall(r"^## \[([^\]]+)\](.*)$", text, re.M)
    assert headings[0][0] == "Unreleased"
    for name, rest in headings[1:]:  # released versions: semver and a date
        assert re.fullmatch(r"\d+\.\d+\.\d+", name) and re.fullmatch(r" - \d{4}-\d{2}-\d{2}", rest), name
    kinds = set(re.findall(r"^### (\w+)$", text, re.M))
    assert kinds and kinds <= {"Added", "Changed", "Deprecated", "Removed", "Fixed", "Security"}, kinds


def test_release_workflow_builds_what_make_dist_builds() -> None:
    flow = workflow()
    # PyYAML reads the `on` key as True (YAML 1.1).
    triggers = flow["on"] if "on" in flow else flow[True]
    assert triggers["push"]["tags"] == ["v*.*.*"]
    jobs = flow["jobs"]
    toolchain = tomllib.loads((REPO_ROOT / "rust-toolchain.toml").read_text())["toolchain"]["channel"]
    assert flow["env"]["RUST_TOOLCHAIN"] == toolchain

    wheels = jobs["wheels"]
    assert sorted(wheels["strategy"]["matrix"]["target"]) == ["aarch64", "x86_64"]
    (build,) = steps_using(wheels, "PyO3/maturin-action")
    assert build["with"]["target"] == "${{ matrix.target }}"
    assert build["with"]["manylinux"] not in ("off", "false")
    # The Makefile's `dist`: maturin build --release --out dist (the workflow adds --locked).
    make_dist = re.search(r"^dist:.*\n\tmaturin build (.+)$", (REPO_ROOT / "Makefile").read_text(), re.M)
    assert make_dist is not None
    assert set(make_dist.group(1).split()) <= set(build["with"]["args"].split()) | {"--out", "dist"}
    assert "--out dist" in build["with"]["args"] and "--locked" in build["with"]["args"]

    (sdist,) = steps_using(jobs["sdist"], "PyO3/maturin-action")
    assert sdist["with"]["command"] == "sdist"

    (image,) = steps_using(jobs["image"], "docker/build-push-action")
    assert image["with"]["file"] == "Dockerfile"
    assert set(image["with"]["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    # The Dockerfile's build argument for the toolchain is the one the workflow passes.
    assert re.search(
        r"^ARG RUST_TOOLCHAIN=" + re.escape(toolchain) + "$", (REPO_ROOT / "Dockerfile").read_text(), re.M
    )
    assert "RUST_TOOLCHAIN=" in image["with"]["build-args"]
    # The build context leaves out the deploy tools (helm and friends: over 100 MB) and demo state.
    ignored = set((REPO_ROOT / ".dockerignore").read_text().split())
    assert {".tools", ".venv", "*.db", "*.ledger-spool"} <= ignored

    assert set(jobs["release"]["needs"]) == {"wheels", "sdist", "image"}
    assert flow["permissions"] == {"contents": "read"}, "write access only where a job needs it"


def test_release_workflow_passes_actionlint() -> None:
    result = subprocess.run(
        [tool("actionlint"), "-no-color", str(WORKFLOW)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_version_tag_check_matches_cargo(tmp_path: Path) -> None:
    """The workflow's own shell check accepts the tag of Cargo.toml's version and refuses another."""
    step = next(s for s in workflow()["jobs"]["check-version"]["steps"] if "run" in s)
    bash = shutil.which("bash")
    assert bash is not None
    changelog = (REPO_ROOT / "CHANGELOG.md").read_text()
    (tmp_path / "Cargo.toml").write_text((REPO_ROOT / "Cargo.toml").read_text())
    (tmp_path / "CHANGELOG.md").write_text(changelog + f"\n## [{cargo_version()}] - 2026-12-08\n")
    for tag, ok in ((f"v{cargo_version()}", True), ("v9.9.9", False)):
        result = subprocess.run(
            [bash, "-eo", "pipefail", "-c", step["run"]],
            cwd=tmp_path,
            env={"GITHUB_REF_NAME": tag, "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert (result.returncode == 0) is ok, (tag, result.stdout, result.stderr)
