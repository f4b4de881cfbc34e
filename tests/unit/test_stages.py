"""Single stages of the chain, and the chain's runner, driven with a fake context: headers from a dict,
a connection that records what is written, no server. Each stage is built from a real config through
the worker, the way the chain builds it."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import msgspec
import pytest

from gatecore.api.openai import ChatFields, EmbeddingFields
from gatecore.config.load import load_config
from gatecore.errors import (
    AuthenticationFailed,
    BodyTooLarge,
    Forbidden,
    GatewayError,
    InvalidRequest,
    LimitsUnavailable,
    ModelNotAllowed,
    NotFound,
    RateLimited,
    StoreUnavailable,
)
from gatecore.ledger.run_tag import RunTag
from gatecore.pipeline.chain import Chain
from gatecore.pipeline.debug_timing import DebugTiming
from gatecore.pipeline.decode import DecodeOpenAI
from gatecore.pipeline.read_body import ReadBody
from gatecore.pipeline.recording import Recording
from gatecore.request import CHAT, EMBEDDINGS, Endpoint, RequestContext
from gatecore.routing.stage import RouteStage
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.worker import Worker


async def run_stage(stage: Callable[[RequestContext], Awaitable[None] | None], ctx: RequestContext) -> None:
    """Run one stage as the chain does: await what it returns, when it returns something."""
    waits = stage(ctx)
    if waits is not None:
        await waits


MASTER = "sk-master-stages-unit"
TEAM = "sk-team-stages-unit"
CHAT_BODY = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


class FakeHeaders:
    """granian's header map as the stages read it: `get(name)`, names lower-case."""

    def __init__(self, **headers: str):
        self.headers = {name.replace("_", "-"): value for name, value in headers.items()}

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


class FakeClient:
    """The client's connection: the body it sends, and what the stages answer."""

    def __init__(self, body: bytes = b""):
        self.body = body
        self.answers: list[tuple[int, list[tuple[str, str]], bytes]] = []

    async def __call__(self) -> bytes:
        return self.body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.body

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answers.append((status, headers, body))


def context(body: bytes = CHAT_BODY, endpoint: Endpoint = CHAT, **headers: str) -> RequestContext:
    return RequestContext(
        endpoint, "r1", body, time.perf_counter_ns(), FakeHeaders(**headers), FakeClient(body)
    )


@pytest.fixture(scope="module")
def worker() -> Iterator[Worker]:
    config = load_config(
        {
            "providers": [{"name": "p", "kind": "echo"}, {"name": "q", "kind": "echo"}],
            "models": [
                {"name": "m", "deployments": [{"provider": "p", "model": "m"}]},
                {"name": "other", "deployments": [{"provider": "p", "model": "other"}]},
                {
                    "name": "tagged",
                    "deployments": [
                        {"provider": "p", "model": "t", "tags": ["eu"]},
                        {"provider": "q", "model": "t", "tags": ["us"]},
                    ],
                },
            ],
            "auth": {
                "master_key": MASTER,
                "keys": [{"key": TEAM, "name": "team", "models": ["m"], "rpm": 1}],
            },
            "ledger": {"enabled": False},
            "telemetry": {"metrics": False},
        },
        {},
    )
    built = Worker(config)
    built.auth.install({}, [])  # as the identity sync does once the store's keys have loaded
    yield built
    built.close()


@pytest.mark.asyncio
async def test_auth_reads_the_bearer_or_x_api_key_and_refuses_the_rest(worker: Worker) -> None:
    ctx = context(authorization=f"Bearer {TEAM}")
    await run_stage(worker.auth, ctx)
    assert ctx.key is not None and ctx.key.name == "team" and ctx.api_key == TEAM
    ctx = context(x_api_key=MASTER)
    await run_stage(worker.auth, ctx)
    assert ctx.key is not None and ctx.key.source == "master"
    with pytest.raises(AuthenticationFailed) as missing:
        await run_stage(worker.auth, context())
    assert missing.value.code == "missing_api_key"
    with pytest.raises(AuthenticationFailed) as wrong:
        await run_stage(worker.auth, context(authorization="Bearer sk-nobody"))
    assert wrong.value.code == "invalid_api_key"


@pytest.mark.asyncio
async def test_a_miss_is_a_503_until_the_stored_keys_have_loaded() -> None:
    config = load_config(
        {"auth": {"key_hash_secret": "a-hash-secret-of-16+chars"}, "ledger": {"enabled": False}}, {}
    )
    auth = Worker(config).auth
    with pytest.raises(StoreUnavailable):
        await run_stage(auth, context(authorization="Bearer gk-not-loaded-yet"))
    auth.install({}, [])
    with pytest.raises(AuthenticationFailed):
        await run_stage(auth, context(authorization="Bearer gk-not-loaded-yet"))
    with pytest.raises(AuthenticationFailed):  # auth is on from the start, never a pass
        await run_stage(auth, context())


@pytest.mark.asyncio
async def test_run_tag_keeps_a_token_and_refuses_anything_else() -> None:
    ctx = context(x_gatecore_run_id="bench-1")
    RunTag()(ctx)
    assert ctx.run_id == "bench-1"
    with pytest.raises(InvalidRequest) as bad:
        RunTag()(context(x_gatecore_run_id="no spaces"))
    assert bad.value.code == "invalid_run_id"


@pytest.mark.asyncio
async def test_read_body_refuses_a_declared_length_past_the_limit_before_reading() -> None:
    ctx = context(body=b"x" * 2048, content_length="2048")
    with pytest.raises(BodyTooLarge):
        await ReadBody(1024, DeadlineSweeper(), 5.0)(ctx)
    ctx = context(content_length=str(len(CHAT_BODY)))
    ctx.body = b""
    await ReadBody(1024, DeadlineSweeper(), 5.0)(ctx)
    assert ctx.body == CHAT_BODY


@pytest.mark.asyncio
async def test_decode_reads_the_policy_fields_and_refuses_what_the_endpoint_cannot_do() -> None:
    ctx = context(b'{"model":"m","messages":[],"stream":true,"max_tokens":7}')
    DecodeOpenAI(msgspec.json.Decoder(ChatFields))(ctx)
    assert (ctx.client_model, ctx.stream, ctx.max_tokens) == ("m", True, 7)
    with pytest.raises(InvalidRequest) as nameless:
        DecodeOpenAI(msgspec.json.Decoder(EmbeddingFields))(context(b'{"input":"x"}', EMBEDDINGS))
    assert (nameless.value.code, nameless.value.param) == ("missing_model", "model")
    with pytest.raises(InvalidRequest) as broken:
        DecodeOpenAI(msgspec.json.Decoder(ChatFields))(context(b'{"model": '))
    assert broken.value.code == "invalid_json"


@pytest.mark.asyncio
async def test_route_resolves_the_model_the_key_may_use_and_reads_tags_only_when_routing_by_them(
    worker: Worker,
) -> None:
    route = RouteStage(worker.routes)
    assert route.tag_routing  # a deployment has tags
    ctx = context(x_gatecore_tags="us")
    ctx.client_model = "tagged"
    route(ctx)
    assert ctx.deployment_id == "q/t" and ctx.tags == frozenset({"us"})
    unknown = context()
    unknown.client_model = "nope"
    with pytest.raises(NotFound):
        route(unknown)
    team = context(authorization=f"Bearer {TEAM}")
    await run_stage(worker.auth, team)
    team.client_model = "other"
    with pytest.raises(ModelNotAllowed):
        route(team)


@pytest.mark.asyncio
async def test_limits_refuse_past_the_keys_rpm(worker: Worker) -> None:
    for attempt in range(2):
        ctx = context(authorization=f"Bearer {TEAM}")
        await run_stage(worker.auth, ctx)
        ctx.client_model = "m"
        RouteStage(worker.routes)(ctx)
        if attempt == 0:
            await admit(worker, ctx)
            assert ctx.limits is not None
            assert ("x-ratelimit-limit-requests", "1") in ctx.limits.headers()
        else:
            with pytest.raises(RateLimited):
                await admit(worker, ctx)


@pytest.mark.asyncio
async def test_debug_timing_only_for_a_key_that_may_see_it(worker: Worker) -> None:
    names = ["auth", "decode"]
    ctx = context(x_gatecore_debug="timing")
    ctx.stage_ends = [ctx.started + 1000, ctx.started + 2000]
    DebugTiming(names)(ctx)
    assert ctx.timing is None  # no key
    await run_stage(worker.auth, ctx := context(authorization=f"Bearer {MASTER}", x_gatecore_debug="timing"))
    ctx.stage_ends = [ctx.started + 1000, ctx.started + 2000]
    DebugTiming(names)(ctx)
    assert ctx.timing is not None
    name, value = ctx.timing.header(0)
    assert name == "x-gatecore-timing" and value.startswith("auth;dur=0.001, decode;dur=0.001")


class Step:
    def __init__(self, name: str, log: list[str], error: GatewayError | None = None):
        self.name, self.log, self.error = name, log, error

    async def __call__(self, ctx: RequestContext) -> None:
        self.log.append(self.name)
        if self.error is not None:
            raise self.error


class Kept:
    def __init__(self) -> None:
        self.records: list[tuple[str, int, str | None]] = []

    def record(self, ctx: RequestContext, finished_ns: int) -> None:
        self.records.append((ctx.request_id, ctx.status, ctx.error_code))

    async def aclose(self) -> None:
        pass


@pytest.mark.asyncio
async def test_the_chain_runs_in_order_marks_timed_stages_and_records_what_stopped_it() -> None:
    log: list[str] = []
    kept = Kept()
    recording = Recording((kept,))
    refusal = Forbidden("no", code="nope")
    steps = (
        (Step("a", log), True),
        (Step("b", log), False),
        (Step("c", log, refusal), True),
        (Step("d", log), True),
    )
    chain = Chain(CHAT, steps, recording, None)
    ctx = context()
    error = await chain.run(ctx, "/v1/chat/completions")
    assert error is refusal
    assert log == ["a", "b", "c"]  # the refusal ends the chain
    assert len(ctx.stage_ends) == 1  # only `a`, timed, got through
    assert (ctx.status, ctx.error_code, recording.in_flight) == (403, "nope", 0)
    assert kept.records == []  # recorded on the loop's next turn
    recording.record_batch()
    assert kept.records == [("r1", 403, "nope")]


@pytest.mark.asyncio
async def test_a_gone_client_gets_no_answer_and_is_recorded_as_499() -> None:
    class Gone:
        async def __call__(self, ctx: RequestContext) -> None:
            ctx.client_gone = True
            raise RateLimited("late")

    kept = Kept()
    chain = Chain(CHAT, ((Gone(), False),), Recording((kept,)), None)
    ctx = context()
    assert await chain.run(ctx, "/v1/chat/completions") is None
    chain.recording.record_batch()
    assert kept.records == [("r1", 499, "rate_limit_exceeded")]


def test_every_worker_chain_has_the_same_timed_stages(worker: Worker) -> None:
    assert worker.stage_names == ("auth", "decode", "route", "limits")
    assert set(worker.chains) == {
        "chat",
        "completions",
        "embeddings",
        "messages",
        "rerank",
        "moderations",
        "audio_speech",
        "audio_transcriptions",
        "images",
        "responses",
        "responses_compact",
        "prompts",
    }
    assert set(worker.gemini_chains) == {"generate", "stream_sse", "stream_json", "count"}
    for chain in (
        *worker.chains.values(),
        worker.gemini_chains["generate"],
        worker.gemini_chains["stream_sse"],
    ):
        assert sum(timed for _, timed in chain.steps) == len(worker.stage_names)


@pytest.mark.asyncio
async def test_a_full_limits_table_is_a_503_not_a_crash() -> None:
    keys = [{"key": f"sk-many-keys-{i:04d}-0123456789", "name": f"k{i}", "rpm": 10} for i in range(1100)]
    config = load_config(
        {
            "providers": [{"name": "p", "kind": "echo"}],
            "models": [{"name": "m", "deployments": [{"provider": "p", "model": "m"}]}],
            "auth": {"keys": keys},
            "limits": {"table_slots": 1024},
            "ledger": {"enabled": False},
            "telemetry": {"metrics": False},
        },
        {},
    )
    worker = Worker(config)
    refusals = 0
    for key in keys:
        ctx = context(authorization=f"Bearer {key['key']}")
        await run_stage(worker.auth, ctx)
        ctx.client_model = "m"
        RouteStage(worker.routes)(ctx)
        try:
            await admit(worker, ctx)
        except LimitsUnavailable as exc:
            assert exc.status == 503 and exc.code == "limits_table_full"
            refusals += 1
    assert refusals > 0  # more keys than cells: the last ones are refused, never served unlimited
    worker.close()


async def admit(worker: Worker, ctx: RequestContext) -> None:
    """Run the limits stage as the chain does (it returns an awaitable only when a rule applies)."""
    waits = worker.limits(ctx)
    if waits is not None:
        await waits
