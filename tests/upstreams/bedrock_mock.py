"""A loopback upstream speaking Bedrock Runtime's Converse API, from AWS's API reference.

`POST /model/{modelId}/converse` answers `{"output": {"message": {...}}, "stopReason", "usage",
"metrics"}`; `/converse-stream` answers `application/vnd.amazon.eventstream` frames (real prelude
and message CRCs): messageStart, contentBlockStart (toolUse), contentBlockDelta (text / toolUse.input
fragments), contentBlockStop, messageStop, metadata (usage). Every request's SigV4 signature is
recomputed here, independently of the gateway's signer; a mismatch is answered the way AWS does
(403, `x-amzn-ErrorType: InvalidSignatureException`). Errors: `{"message"}` with x-amzn-ErrorType.
Steering: scripted_mock.py (`corrupt`: "bad_crc", "truncated", "no_stop", "exception", "bad_json").
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

from .event_stream_frames import event, exception
from .scripted_mock import JsonObject, Script, ScriptedUpstream, split_words

ERROR_TYPES = {
    400: "ValidationException",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    408: "ModelTimeoutException",
    424: "ModelErrorException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


class BedrockMock(ScriptedUpstream):
    thread_name = "bedrock-mock"

    def __init__(self, access_key_id: str, secret_access_key: str, region: str) -> None:
        super().__init__()
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.region = region

    @property
    def base_url(self) -> str:
        return self.origin

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model}/converse", self._converse)
        app.router.add_post("/model/{model}/converse-stream", self._converse)

    # -- SigV4, recomputed from what arrived -----------------------------------------------------------

    def signature_problem(self, request: web.Request, body: bytes) -> str | None:
        auth = request.headers.get("Authorization", "")
        prefix = "AWS4-HMAC-SHA256 Credential="
        if not auth.startswith(prefix):
            return "missing Authorization"
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
        access_key, day, region, service, terminator = fields["Credential"].split("/")
        if (access_key, region, service, terminator) != (
            self.access_key_id,
            self.region,
            "bedrock",
            "aws4_request",
        ):
            return f"wrong credential scope {fields['Credential']}"
        amz_date = request.headers.get("X-Amz-Date", "")
        if amz_date[:8] != day:
            return "x-amz-date does not match the scope"
        names = fields["SignedHeaders"].split(";")
        if "host" not in names or "x-amz-date" not in names:
            return "host and x-amz-date must be signed"
        headers = "".join(f"{n}:{' '.join(request.headers.get(n, '').split())}\n" for n in names)
        path = quote(
            request.raw_path.split("?")[0], safe="/~"
        )  # encoded once more, as for every service but S3
        canonical = "\n".join(
            [request.method, path, "", headers, fields["SignedHeaders"], hashlib.sha256(body).hexdigest()]
        )
        scope = f"{day}/{region}/{service}/aws4_request"
        to_sign = "\n".join(
            ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
        )
        key = ("AWS4" + self.secret_access_key).encode()
        for part in (day, region, service, "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return None if hmac.compare_digest(expected, fields["Signature"]) else "signature mismatch"

    def _error(
        self,
        recorded: Any,
        status: int,
        message: str,
        error_type: str | None = None,
        retry_after: str | None = None,
    ) -> web.Response:
        error_type = error_type or ERROR_TYPES.get(status, "InternalServerException")
        headers = {"x-amzn-ErrorType": f"{error_type}:http://internal.amazon.com/coral/com.amazon.bedrock/"}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        return self.json_answer(recorded, status, {"message": message}, headers)

    # -- Converse ------------------------------------------------------------------------------------

    async def _converse(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        script = self.script_for(recorded)
        problem = self.signature_problem(request, recorded.body)
        if problem is not None:
            message = "The request signature we calculated does not match the signature you provided."
            return self._error(recorded, 403, f"{message} ({problem})", "InvalidSignatureException")
        body = recorded.body_json
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._error(recorded, 400, "Malformed input request: messages is required")
        if script.status is not None:
            message = script.error if isinstance(script.error, str) else f"mock error {script.status}"
            return self._error(recorded, script.status, message, script.error_type, script.retry_after)
        text, calls = self._reply(body, script)
        pieces = split_words(text) if text else []
        usage = {
            "inputTokens": sum(len(json.dumps(m).split()) for m in body["messages"]),
            "outputTokens": max(1, len(pieces) + len(calls)),
            "cacheReadInputTokens": 3,
            "cacheWriteInputTokens": 0,
        }
        usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"] + 3
        stop = script.finish or ("tool_use" if calls else "end_turn")
        if not request.path.endswith("/converse-stream"):
            content: list[JsonObject] = [{"text": text}] if text else []
            content += [
                {"toolUse": {"toolUseId": f"tooluse_{i}", "name": n, "input": a}}
                for i, (n, a) in enumerate(calls)
            ]
            answer = {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": stop,
                "usage": usage,
                "metrics": {"latencyMs": 12},
            }
            return self.json_answer(recorded, 200, answer)
        frames = self._stream_frames(pieces, calls, stop, usage, script)
        return await self.stream_frames(
            request, recorded, script, "application/vnd.amazon.eventstream", frames
        )

    @staticmethod
    def _reply(body: JsonObject, script: Script) -> tuple[str, list[tuple[str, JsonObject]]]:
        if script.tool_calls:
            return "", script.tool_calls
        if script.content is not None:
            return script.content, []
        last = ""
        for message in body["messages"]:
            if message.get("role") == "user":
                texts = [b["text"] for b in message.get("content", []) if isinstance(b, dict) and "text" in b]
                last = "".join(texts) or last
        return "mock: " + last, []

    @staticmethod
    def _stream_frames(
        pieces: list[str], calls: list[tuple[str, JsonObject]], stop: str, usage: JsonObject, script: Script
    ) -> list[bytes]:
        frames = [event("messageStart", {"role": "assistant"})]
        block = 0
        if pieces:
            frames += [
                event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces
            ]
            frames.append(event("contentBlockStop", {"contentBlockIndex": 0}))
            block = 1
        for i, (name, arguments) in enumerate(calls):
            start = {"toolUse": {"toolUseId": f"tooluse_{i}", "name": name}}
            frames.append(event("contentBlockStart", {"contentBlockIndex": block, "start": start}))
            raw = json.dumps(arguments)
            for j in range(0, len(raw), 7):  # input arrives as JSON fragments
                delta = {"toolUse": {"input": raw[j : j + 7]}}
                frames.append(event("contentBlockDelta", {"contentBlockIndex": block, "delta": delta}))
            frames.append(event("contentBlockStop", {"contentBlockIndex": block}))
            block += 1
        if script.corrupt == "exception":
            frames.append(exception("modelStreamErrorException", "The model stream failed."))
            return frames
        if script.corrupt == "bad_crc":
            bad = frames[1]
            frames[1] = bad[:-1] + bytes([bad[-1] ^ 0xFF])
        if script.corrupt == "bad_json":
            frames.insert(1, _raw_event("contentBlockDelta", b'{"delta": {"text": '))
        if script.corrupt == "truncated":
            frames[-1] = frames[-1][:-5]
            return frames
        if script.corrupt != "no_stop":
            frames.append(event("messageStop", {"stopReason": stop}))
            frames.append(event("metadata", {"usage": usage, "metrics": {"latencyMs": 12}}))
        return frames


def _raw_event(event_type: str, payload: bytes) -> bytes:
    from .event_stream_frames import frame

    return frame(
        {":event-type": event_type, ":content-type": "application/json", ":message-type": "event"}, payload
    )


def model_in_path(path: str) -> str:
    """The model id of a recorded request path (percent-decoded)."""
    return unquote(path.split("/")[2])
