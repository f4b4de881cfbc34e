"""The per-request context every stage of the chain reads and fills.

Ground floor: this module imports no stage (the stages' objects it holds are typed by the Protocols of
request/views.py), so every stage can import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from gatecore.errors import GatewayError
    from gatecore.policy.key_policy import KeyPolicy
    from gatecore.request.chunk_gaps import ChunkGaps
    from gatecore.request.prompt_ref import PromptRef
    from gatecore.request.stage_timing import StageTiming
    from gatecore.request.views import (
        Abortable,
        AnswerGuard,
        CacheTicket,
        DeploymentView,
        GpuShare,
        LimitGrant,
        RouteView,
        TraceView,
    )


class Endpoint:
    """An inference endpoint kind: which upstream path it maps to and whether it can stream.

    `name` labels the request in metrics, logs and traces; `hub` is the endpoint it is served as
    (itself, or chat for a client API translated into the hub format): providers look at `hub`.
    `generates`: its answer is generated text counted in output tokens (limits reserve them);
    `multipart`: its body is a multipart form (forwarded with the client's content type).
    """

    __slots__ = ("generates", "hub", "multipart", "name", "streams", "upstream_path")

    def __init__(
        self,
        name: str,
        upstream_path: str,
        streams: bool,
        hub: Endpoint | None = None,
        generates: bool = True,
        multipart: bool = False,
    ):
        self.name = name
        self.upstream_path = upstream_path
        self.streams = streams
        self.hub: Endpoint = hub or self
        self.generates = generates
        self.multipart = multipart


CHAT = Endpoint("chat", "/chat/completions", streams=True)
COMPLETIONS = Endpoint("completions", "/completions", streams=True)
EMBEDDINGS = Endpoint("embeddings", "/embeddings", streams=False, generates=False)
# The rest of OpenAI's surface, passed through to OpenAI-compatible upstreams (pipeline/passthrough.py).
RERANK = Endpoint("rerank", "/rerank", streams=False, generates=False)
MODERATIONS = Endpoint("moderations", "/moderations", streams=False, generates=False)
SPEECH = Endpoint("audio_speech", "/audio/speech", streams=False, generates=False)
TRANSCRIPTIONS = Endpoint(
    "audio_transcriptions", "/audio/transcriptions", streams=False, generates=False, multipart=True
)
IMAGES = Endpoint("images", "/images/generations", streams=False, generates=False)
# The Responses API's conversation compaction, on upstreams that have it (OpenAI, Azure's v1 API).
COMPACT = Endpoint("responses_compact", "/responses/compact", streams=False, generates=False)
PASSTHROUGH_ENDPOINTS = (RERANK, MODERATIONS, SPEECH, TRANSCRIPTIONS, IMAGES, COMPACT)
# Anthropic's Messages API, served as chat through the hub format.
MESSAGES = Endpoint("messages", CHAT.upstream_path, streams=True, hub=CHAT)
# Google's Gemini API (generateContent and its stream), served as chat through the hub format.
GEMINI = Endpoint("gemini", CHAT.upstream_path, streams=True, hub=CHAT)
# OpenAI's Responses API: chat through the hub format, or passed through (ctx.native_body).
RESPONSES = Endpoint("responses", CHAT.upstream_path, streams=True, hub=CHAT)


class Usage:
    """Tokens of one request and where the figures came from (`upstream` or `counted`)."""

    __slots__ = ("cached_tokens", "input_tokens", "output_tokens", "reasoning_tokens", "source")

    def __init__(
        self,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cached_tokens: int = 0,
        reasoning_tokens: int = 0,
        source: str = "none",
    ):
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.cached_tokens = cached_tokens
        self.reasoning_tokens = reasoning_tokens
        self.source = source


class BodyCapture:
    """The first `limit` bytes of what was written to the client (body logging, opted into per key or
    team); the rest is only counted."""

    __slots__ = ("limit", "parts", "size", "total")

    def __init__(self, limit: int):
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0  # bytes kept
        self.total = 0  # bytes written

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.limit - self.size
        if room > 0:
            part = data[:room]
            self.parts.append(part)
            self.size += len(part)

    @property
    def truncated(self) -> bool:
        return self.total > self.size

    def data(self) -> bytes:
        return b"".join(self.parts)


class ResponseEncoder(Protocol):
    """Turns the hub-format (OpenAI) answer into the client's API shape (translate/).

    None on the context for OpenAI clients: their answers pass through untouched.
    """

    content_type: str
    """The content type of `encode_body`'s result."""

    def feed(self, events: bytes) -> bytes:
        """Complete OpenAI SSE events (as the relay emits them) → the client's events, in order."""
        ...

    def finish(self, usage: Usage) -> bytes:
        """The client's last events at the upstream's end; raises a GatewayError if it ended early."""
        ...

    def encode_body(self, body: bytes) -> bytes:
        """A whole OpenAI `chat.completion` body → the client's body (its event stream when the client
        asked for a stream); raises a GatewayError if `body` is not one."""
        ...

    def error_answer(self, exc: GatewayError) -> tuple[int, bytes]:
        """The client's status and error body for `exc`."""
        ...

    def error_event(self, exc: GatewayError) -> bytes:
        """The client's error event, ending a stream that broke after it started."""
        ...


class AnthropicNative:
    """An Anthropic client's request parts the hub format cannot carry faithfully, kept for an
    Anthropic upstream (providers/anthropic.py), which sends them instead of their hub form."""

    __slots__ = ("members", "thinking")

    def __init__(self, members: dict[str, bytes], thinking: dict[int, list[dict[str, str]]]):
        # `thinking`, `output_config` and `context_management` as raw JSON, as sent.
        self.members = members
        # Signed thinking blocks of earlier assistant turns, by the turn's place among the
        # request's assistant messages (Anthropic wants them back in a tool loop).
        self.thinking = thinking


class RequestContext:
    """Everything known about one inference request, filled in as it moves through the pipeline."""

    __slots__ = (
        "answer_headers",
        "anthropic_native",
        "api_key",
        "attempts",
        "body",
        "body_capture",
        "cache",
        "choices",
        "chunk_gaps",
        "client",
        "client_gone",
        "client_model",
        "cost_usd",
        "deployment",
        "deployment_id",
        "encoder",
        "endpoint",
        "error_code",
        "error_upstream",
        "finish_reason",
        "first_byte_ns",
        "fit",
        "gpu_mark",
        "gpu_seconds",
        "guard",
        "headers",
        "include_usage",
        "key",
        "limits",
        "max_tokens",
        "native_body",
        "needs",
        "overhead_ns",
        "prompt",
        "prompt_count",
        "request_id",
        "route",
        "run_id",
        "stage_ends",
        "started",
        "status",
        "stream",
        "streamed_events",
        "tags",
        "timing",
        "trace",
        "upstream",
        "upstream_model",
        "upstream_ns",
        "upstream_sent_ns",
        "usage",
    )

    def __init__(
        self,
        endpoint: Endpoint,
        request_id: str,
        body: bytes,
        started: int,
        headers: Any = None,
        client: Any = None,
    ):
        self.endpoint = endpoint
        # The client's request headers (granian's lazy header map: `get(name)` reads one) and its
        # connection (granian's RSGI protocol: the body, the answer, the disconnect future). Typed
        # loosely on purpose: only server/ builds them, and stages read the few parts they need.
        self.headers = headers
        self.client = client
        self.request_id = request_id
        self.body = body  # the client's raw body; forwarded as is unless a stage must change it
        self.started = started  # perf_counter_ns at arrival
        # perf_counter_ns at the end of each pipeline stage the request got through, in order: auth,
        # decode, then the pipeline's (Gateway.stage_names; telemetry: stage durations, x-gatecore-timing, spans).
        self.stage_ends: list[int] = []
        self.api_key: str | None = None
        self.key: KeyPolicy | None = None
        self.client_model = ""
        self.stream = False
        self.include_usage = False  # the client itself asked for stream usage
        self.max_tokens: int | None = None
        self.choices = 1  # `n`: how many answers the request asks for (each up to max_tokens)
        # What the request needs of a deployment (routing/capabilities.py bits: tools, images, JSON
        # schema) and, once routed, its whole Fit (None: nothing special).
        self.needs = 0
        self.fit: object | None = None  # routing/fit.py's Fit: only routing reads it
        # The prompt's tokens as counted by the routing stage, with the tokenizer used (reused by
        # the limits stage when it counts with the same one).
        self.prompt_count: tuple[str, int] | None = None
        # What the limits stage counted this request against (None: no limit applies).
        self.limits: LimitGrant | None = None
        self.route: RouteView | None = None
        self.deployment: DeploymentView | None = None
        self.deployment_id = ""  # `<provider>/<upstream model>`, shown as x-gatecore-model
        self.attempts = 1  # upstream attempts so far (retries and fallbacks), shown as x-gatecore-attempts
        self.tags: frozenset[str] | None = None  # `x-gatecore-tags`: only deployments with all of these
        self.upstream_model = ""
        self.client_gone = False
        # The exchange in flight, so a client disconnect can abort it at once.
        self.upstream: Abortable | None = None
        self.upstream_ns = 0  # time spent waiting on the upstream, excluded from overhead
        # perf_counter_ns when the first attempt's request was written to an upstream connection.
        self.upstream_sent_ns = 0
        self.status = 0
        self.error_code: str | None = None
        self.error_upstream = False  # the error came from the upstream (not gatecore's own refusal)
        self.streamed_events = 0
        self.usage: Usage | None = None
        self.finish_reason: str | None = None  # the first choice's, when the answer had one
        # Translates answers for a client whose API is not the hub format (None: OpenAI clients).
        self.encoder: ResponseEncoder | None = None
        # What an Anthropic upstream gets instead of the hub form (None: nothing, or not Anthropic).
        self.anthropic_native: AnthropicNative | None = None
        # The client's own bytes when its API is not the hub format but some upstreams speak it
        # natively (`/v1/responses`): such a provider sends these instead of `body`.
        self.native_body: bytes | None = None
        # Headers a decode stage adds to the answer's head (e.g. x-gatecore-dropped-tools).
        self.answer_headers: list[tuple[str, str]] | None = None
        self.run_id: str | None = None  # the client's `x-gatecore-run-id` tag, kept in the ledger
        self.first_byte_ns = 0  # perf_counter_ns when the answer's first byte went to the client
        # gatecore's time up to the answer's head, as sent in x-gatecore-overhead-ms (0: no head was
        # sent with it, e.g. gatecore's own refusals).
        self.overhead_ns = 0
        self.chunk_gaps: ChunkGaps | None = None  # a stream's gaps between writes (relay/streaming.py)
        # The answer's bytes as written to the client, kept only for keys that opted into body logging.
        self.body_capture: BodyCapture | None = None
        # The cache stage's decision for this request (cache/): None when no cache applies.
        self.cache: CacheTicket | None = None
        # GPU-time pricing: the meter and its clock reading when this request started, then its share
        # of the pool's GPU seconds once finished (pricing/gpu_time.py).
        self.gpu_mark: tuple[GpuShare, int] | None = None
        self.gpu_seconds = 0.0
        self.cost_usd: float | None = None  # set once, by the ledger's recorder
        # Per-stage marks for `x-gatecore-timing`, only when the client asked and may see them.
        self.timing: StageTiming | None = None
        # This request's spans when tracing is on and it is sampled, else only its trace context
        # (telemetry/trace_spans.py); None when tracing is off.
        self.trace: TraceView | None = None
        # The output side of the model's guardrails, which the relays call (None: no guard looks at
        # answers; guardrails/stage.py sets it).
        self.guard: AnswerGuard | None = None
        self.prompt: PromptRef | None = None  # POST /v1/prompts/{name}: the prompt and its version
