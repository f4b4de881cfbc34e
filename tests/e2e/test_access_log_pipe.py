"""The access log on a pipe whose reader stalls (a log collector that stops reading): requests are
still answered at once, and every line reaches the pipe once it is read again."""

from __future__ import annotations

import json
import os
import select
import subprocess
import time
from pathlib import Path

import openai
import pytest

from ..upstreams.openai_mock import MockUpstream, RefusedPort
from .gateway import MASTER_KEY, PYTHON, REPO_ROOT, free_port, http_get_status, server_env, standard_config

# ~450-byte lines: 300 of them are twice what a pipe holds (64 KiB on Linux).
REQUESTS = 300


def read_lines(pipe: int, want: set[str], timeout: float) -> set[str]:
    """Read the pipe until every request id in `want` was seen in a line (or the time is up)."""
    seen: set[str] = set()
    data = b""
    deadline = time.monotonic() + timeout
    while seen != want and time.monotonic() < deadline:
        ready, _, _ = select.select([pipe], [], [], 0.2)
        if not ready:
            continue
        chunk = os.read(pipe, 1 << 20)
        if not chunk:
            break
        data += chunk
        *lines, data = data.split(b"\n")
        for line in lines:
            if line.startswith(b'{"ts"'):
                request_id = json.loads(line)["request_id"]
                if request_id in want:
                    seen.add(request_id)
    return seen


@pytest.mark.timeout(90)
def test_a_stalled_stdout_pipe_blocks_no_request_and_loses_no_line(
    tmp_path: Path, upstream: MockUpstream, refused: RefusedPort
) -> None:
    config = standard_config(upstream.base_url, refused.base_url)
    config["server"] = {"access_log": True}
    config_path = tmp_path / "gatecore.json"
    config_path.write_text(json.dumps(config))
    port = free_port()
    env = server_env({"GATECORE_STORE_URL": f"sqlite:///{tmp_path / 'gatecore.db'}"})
    cmd = [PYTHON, "-m", "gatecore", "serve", "--config", str(config_path), "--port", str(port)]
    with open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=err)
    assert proc.stdout is not None
    pipe = proc.stdout.fileno()
    try:
        deadline = time.monotonic() + 30
        while http_get_status(port, "/readyz") != 200:
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "stderr").read_text()
            time.sleep(0.1)
        # Nobody reads stdout while the requests go: with blocking writes the worker's loop would
        # stop at the write that fills the pipe, and the requests after it would time out.
        ids = [f"pipe-{i}" for i in range(REQUESTS)]
        base_url = f"http://127.0.0.1:{port}/v1"
        with openai.OpenAI(base_url=base_url, api_key=MASTER_KEY, max_retries=0, timeout=5.0) as client:
            for request_id in ids:
                answer = client.chat.completions.create(
                    model="gpt-test",
                    messages=[{"role": "user", "content": "hi"}],
                    extra_headers={"x-request-id": request_id},
                )
                assert answer.choices[0].message.content
        # Reading again: every line comes through, none dropped or doubled into another.
        assert read_lines(pipe, set(ids), timeout=20) == set(ids)
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
    assert "dropped" not in (tmp_path / "stderr").read_text()
