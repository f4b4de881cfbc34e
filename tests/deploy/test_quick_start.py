"""The README's quick start: its Python snippet against `gatecore serve --demo`, and a demo run in a
checkout leaves nothing untracked behind."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

from ..e2e.gateway import PYTHON, free_port, http_get_status, server_env, stop_process
from .tools import REPO_ROOT

README = REPO_ROOT / "README.md"


def quick_start() -> str:
    text = README.read_text()
    return text[text.index("## Quick start") : text.index("\n## ", text.index("## Quick start") + 1)]


def start_demo(cwd: Path, logs: Path) -> tuple[subprocess.Popen[bytes], int]:
    """`gatecore serve --demo` as the README runs it: no config, no store URL, in `cwd`."""
    port = free_port()
    env = server_env()
    env.pop("GATECORE_STORE_URL", None)
    env.pop("GATECORE_CONFIG", None)
    with open(logs / "demo.out", "wb") as out:
        proc = subprocess.Popen(
            [PYTHON, "-m", "gatecore", "serve", "--demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 30
    while http_get_status(port, "/readyz") != 200:
        assert proc.poll() is None and time.monotonic() < deadline, (logs / "demo.out").read_text()
        time.sleep(0.1)
    return proc, port


def test_quick_start_commands() -> None:
    """The first command installs into a venv (a Debian system Python refuses `pip install` outside
    one); the second is .ci/run, which installs what `make test` needs and runs it."""
    section = quick_start()
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert (
        blocks[0].strip()
        == "python3 -m venv .venv && . .venv/bin/activate && pip install . && gatecore serve --demo"
    )
    assert ".ci/run" in [b.strip() for b in blocks]
    ci_run = (REPO_ROOT / ".ci" / "run").read_text()
    assert "make deploy-tools" in ci_run and 'exec make test PYTHON="$PYTHON"' in ci_run
    # The venv the quick start makes is the one `make test` builds on.
    assert re.search(r"^VENV\s+\?= \.venv$", (REPO_ROOT / "Makefile").read_text(), re.M)


def test_readme_streaming_snippet_prints_the_text_only(tmp_path: Path) -> None:
    snippet = re.findall(r"```python\n(.*?)```", quick_start(), re.S)[0]
    assert "127.0.0.1:8080" in snippet
    proc, port = start_demo(tmp_path, tmp_path)
    try:
        script = tmp_path / "snippet.py"
        script.write_text(snippet.replace("127.0.0.1:8080", f"127.0.0.1:{port}"))
        result = subprocess.run(
            [PYTHON, str(script)], capture_output=True, text=True, timeout=60, check=False, env=server_env()
        )
    finally:
        stop_process(proc)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "hi there\n", "the echo model's answer, and no `None` after it"


def test_demo_in_a_checkout_leaves_nothing_untracked(tmp_path: Path) -> None:
    """The demo keeps its SQLite store (and the ledger's spool beside it) in the working directory:
    in a checkout, git must ignore them."""
    git = shutil.which("git")
    assert git is not None
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    shutil.copy(REPO_ROOT / ".gitignore", checkout / ".gitignore")
    for args in (["init", "-q"], ["add", ".gitignore"]):
        subprocess.run([git, *args], cwd=checkout, check=True, timeout=30)
    proc, port = start_demo(checkout, tmp_path)
    try:
        result = subprocess.run(
            [PYTHON, "-c", _REQUEST, str(port)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
    finally:
        stop_process(proc)
    written = sorted(p.name for p in checkout.iterdir() if p.name not in (".git", ".gitignore"))
    assert "gatecore.db" in written and "gatecore.db.ledger-spool" in written, written
    # git status lists no empty directory (the spool is one until the store fails): ask git whether
    # each thing the demo wrote is ignored.
    ignored = subprocess.run(
        [git, "check-ignore", "--no-index", *written],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert sorted(ignored.stdout.split()) == written, (
        f"not ignored: {set(written) - set(ignored.stdout.split())}"
    )
    status = subprocess.run(
        [git, "status", "--porcelain", "--untracked-files=all"],
        cwd=checkout,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert [line for line in status.stdout.splitlines() if not line.endswith(".gitignore")] == []


_REQUEST = """
import json, sys, urllib.request
body = json.dumps({"model": "echo", "messages": [{"role": "user", "content": "hello"}]}).encode()
request = urllib.request.Request(f"http://127.0.0.1:{sys.argv[1]}/v1/chat/completions", body,
                                 {"content-type": "application/json"})
answer = json.load(urllib.request.urlopen(request, timeout=30))
assert answer["choices"][0]["message"]["content"] == "hello", answer
"""
