"""msgspec Structs for the config file (DESIGN.md §3). Frozen; unknown fields are errors."""

from __future__ import annotations

import re

import msgspec

from gatecore.config.cache import CacheConfig, ModelCacheConfig
from gatecore.config.guardrails import GuardrailConfig
from gatecore.config.jwt import JwtConfig
from gatecore.config.limits import BudgetsConfig, LimitsConfig, RedisConfig
from gatecore.config.pipeline import PipelineConfig
from gatecore.config.prompts import PromptsConfig
from gatecore.config.queue import QueueConfig, TokenizerConfig
from gatecore.config.responses import ResponsesConfig
from gatecore.config.routing import HealthCheckConfig, ModelRoutingConfig, RetriesConfig, RoutingDefaults
from gatecore.config.telemetry import TelemetryConfig

# Every provider kind and the class that implements it (`module:Class`, imported on first use by
# providers/base.py). A new wire format is one line here.
PROVIDER_CLASSES: dict[str, str] = {
    "openai": "gatecore.providers.openai_compat:OpenAICompatProvider",
    "echo": "gatecore.providers.echo:EchoProvider",
    "anthropic": "gatecore.providers.anthropic:AnthropicProvider",
    "gemini": "gatecore.providers.gemini:GeminiProvider",
    "azure": "gatecore.providers.azure:AzureOpenAIProvider",
    "mistral": "gatecore.providers.mistral:MistralProvider",
    "bedrock": "gatecore.providers.bedrock:BedrockProvider",
    "cohere": "gatecore.providers.cohere:CohereProvider",
    "ollama": "gatecore.providers.ollama:OllamaProvider",
    "tgi": "gatecore.providers.tgi:TgiProvider",
    "triton": "gatecore.providers.triton:TritonProvider",
}
PROVIDER_KINDS = tuple(PROVIDER_CLASSES)
# The kinds that pass allow-listed client headers on (`forward_headers`).
FORWARD_HEADER_KINDS = ("openai", "azure", "anthropic", "bedrock")
# The public endpoint of kinds that have one; `base_url` is required for the others (except `echo`).
DEFAULT_BASE_URLS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "mistral": "https://api.mistral.ai/v1",
    "cohere": "https://api.cohere.com",
}
# Prompt templates the prompt-only engines (tgi, triton) render chat messages with.
CHAT_TEMPLATES = ("chatml", "llama3", "mistral")
TOKENIZERS = ("o200k_base", "cl100k_base")


class TimeoutsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Upstream timeouts in seconds. Unset fields inherit the server-wide defaults."""

    connect: float | None = None
    first_byte: float | None = None
    idle: float | None = None
    total: float | None = None


DEFAULT_TIMEOUTS = TimeoutsConfig(connect=10.0, first_byte=300.0, idle=120.0, total=1800.0)


class ServerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 32 * 1024 * 1024
    # Seconds a known caller has to send its whole body (408 after); nothing of an unknown caller's
    # body is read at all.
    body_read_timeout_s: float = 30.0
    access_log: bool = False
    # Keys or teams with `log_bodies: true` in their metadata get their request and answer bodies
    # into their access-log lines, each cut after this many bytes (0 turns body logging off).
    body_log_max_bytes: int = 16 * 1024
    # Seconds an upstream wait lasts before the client's connection is watched for a disconnect
    # (streams are watched by their writes instead).
    disconnect_watch_after: float = 0.25
    # A worker whose memory passes this many MiB is replaced gracefully (a new one starts first).
    # Guards against slow growth, such as granian's per-call disconnect futures; 0 turns it off.
    worker_max_rss_mb: int = 1024
    # At shutdown, seconds a worker waits for requests in flight to finish and be recorded.
    shutdown_grace_s: float = 10.0
    # On SIGTERM, seconds a worker keeps serving with /readyz at 503 before it stops accepting
    # connections (time for a load balancer to take it out).
    drain_delay_s: float = 0.0
    # Reload the config when its file changes (polled once a second by the main process).
    config_watch: bool = False
    timeouts: TimeoutsConfig = DEFAULT_TIMEOUTS


class ProviderConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An upstream: its wire format (`kind`), where it is and the credentials gatecore uses there."""

    name: str
    kind: str
    base_url: str | None = None
    api_key: str | None = None
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # Ask OpenAI-compatible upstreams for `stream_options.include_usage` so streams report usage.
    stream_usage: bool = True
    tokenizer: str = "o200k_base"
    # The API version the provider is called with: Azure OpenAI's `api-version` query parameter,
    # Anthropic's `anthropic-version` header. Unset: the kind's default.
    api_version: str | None = None
    # Output tokens asked for when the client sent no max_tokens to an upstream that requires one
    # (Anthropic).
    default_max_tokens: int = 4096
    # AWS (bedrock): the region (else taken from a bedrock-runtime.<region>.amazonaws.com base_url;
    # with a region and no base_url, that public endpoint is used) and the SigV4 credentials.
    aws_region: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    # Prompt-only engines (tgi, triton): the template chat messages are rendered with (CHAT_TEMPLATES).
    chat_template: str = "chatml"
    # Client request headers passed on to this upstream (kinds in FORWARD_HEADER_KINDS), besides the
    # kind's own (anthropic: anthropic-beta). Credentials are refused.
    forward_headers: list[str] = msgspec.field(default_factory=list)
    # `/v1/responses`: `native` sends the client's Responses request with only `model` rewritten (the
    # upstream speaks Responses), `translate` goes through the hub format. Unset: native for OpenAI's
    # own base URL and kind azure, translate otherwise.
    responses: str | None = None
    # Built-in Responses tools the upstream cannot run (web_search, …): `drop` them (named in the
    # `x-gatecore-dropped-tools` header) or `reject` the request with a 400.
    unsupported_tools: str = "drop"


def responses_native(provider: ProviderConfig) -> bool:
    """Whether `/v1/responses` requests reach this provider as the client sent them (its `responses`
    setting; unset: OpenAI's own API and Azure OpenAI speak Responses, other upstreams get the hub
    translation)."""
    if provider.responses is not None:
        return provider.responses == "native"
    if provider.kind == "azure":
        return True
    return provider.kind == "openai" and (provider.base_url or "https://api.openai.com").startswith(
        ("https://api.openai.com/", "https://api.openai.com")
    )


class DeploymentPricing(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A deployment's own price, overriding the shipped table (USD per 1M tokens), or GPU-time pricing
    for local engines: each request pays its share of `gpus` * `gpu_hour_usd` while it is in flight."""

    input_per_1m: float | None = None
    output_per_1m: float | None = None
    # Cached prompt tokens; unset: billed as input.
    cached_input_per_1m: float | None = None
    gpu_hour_usd: float | None = None
    gpus: int = 1


class CapabilitiesConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What a model (or one deployment) can do: `/v1/models` reports it, and routing sends a request
    needing tools, images or a JSON schema only where it is not known to be false. Unset fields come
    from the shipped model table (providers/model_table.py), else unknown (false in /v1/models)."""

    tools: bool | None = None
    vision: bool | None = None
    json: bool | None = None


class DeploymentConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One place a model is served: a provider and the model name there."""

    provider: str
    model: str
    weight: float = 1.0
    pricing: DeploymentPricing | None = None
    # Lower is preferred: a deployment is used only while every one of a lower priority is unavailable
    # (circuit open) or has already failed this request.
    priority: int = 0
    # Requests sending `x-gatecore-tags: a,b` go only to deployments carrying all of those tags.
    tags: list[str] = msgspec.field(default_factory=list)
    # The engine's Prometheus endpoint (routing strategy least_loaded); default: the provider's base
    # URL with its path replaced by /metrics.
    metrics_url: str | None = None
    # This deployment's own figures, over the model's `context_window` / `capabilities` (a pool may
    # mix models of different windows); unset: the model's, else the shipped table's.
    context_window: int | None = None
    capabilities: CapabilitiesConfig | None = None
    # Active health checks: true (the `routing.health_check` settings), false, or settings of its
    # own. Unset: on for the local engine kinds ollama, tgi and triton, off for every other kind.
    health_check: HealthCheckConfig | bool | None = None
    # This deployment's own tokenizer (`{path: .../tokenizer.json}`) for exact token counts; unset:
    # the provider's tiktoken `tokenizer`.
    tokenizer: TokenizerConfig | None = None


class ModelConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A client-facing model name and the deployments behind it.

    A name ending in `*` matches any model with that prefix; a deployment model `*` then stands for
    the rest of the requested name (`openai/*` → `gpt-4o` at provider `openai`).
    """

    name: str
    deployments: list[DeploymentConfig]
    timeouts: TimeoutsConfig | None = None
    fallbacks: list[str] = msgspec.field(default_factory=list)
    # Models a request goes to instead when it is too long for this one: before sending, when its
    # estimated tokens exceed every deployment's context window, and on an upstream's "context length
    # exceeded" answer.
    context_fallbacks: list[str] = msgspec.field(default_factory=list)
    # Models a request goes to when an upstream refused it under its content policy (a 400 such as
    # OpenAI's content_policy_violation or Azure's content_filter, or a non-streamed answer whose
    # finish_reason is content_filter).
    content_policy_fallbacks: list[str] = msgspec.field(default_factory=list)
    owned_by: str | None = None
    # Shown in /v1/models; unset: the shipped model table's figures for the deployment's model.
    context_window: int | None = None
    capabilities: CapabilitiesConfig | None = None
    # Unset: the `routing.retries` defaults.
    retries: RetriesConfig | None = None
    routing: ModelRoutingConfig = ModelRoutingConfig()
    cache: ModelCacheConfig | None = None  # unset: the `cache:` section's
    # Guardrails (by name, from the top-level `guardrails:`) every request to this model goes through.
    guardrails: list[str] = msgspec.field(default_factory=list)
    # Fair queuing across tenants while the model's engines are busy (routing/pool_gate.py).
    queue: QueueConfig | None = None


class StaticKeyConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A key written in the config file (virtual keys live in the store instead)."""

    key: str
    name: str | None = None
    models: list[str] | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel: int | None = None
    budget_usd: float | None = None


class AuthConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    master_key: str | None = None
    keys: list[StaticKeyConfig] = msgspec.field(default_factory=list)
    # Keys the HMAC-SHA-256 of stored virtual keys; defaults to the master key. Set it explicitly so
    # the master key can be changed without invalidating every virtual key.
    key_hash_secret: str | None = None
    # How long a rotated key's old secret keeps working unless the rotate call says otherwise.
    rotation_grace_s: float = 3600.0
    # Bearer JWTs from an OIDC issuer, accepted beside API keys.
    jwt: JwtConfig | None = None
    # With no credential source above, whether requests are served without a key: `refuse` (the
    # default: such a config is an error), `loopback` (served, and `serve` listens only on a loopback
    # address) or `anywhere` (served on any address: whoever reaches the port spends the providers'
    # credentials). With a credential source, auth is always on.
    unauthenticated: str = "refuse"

    @property
    def has_credentials(self) -> bool:
        """Some credential source is configured: the master key, static keys, JWTs, or a hash
        secret for stored virtual keys."""
        return bool(self.master_key or self.keys or self.jwt is not None or self.key_hash_secret)


UNAUTHENTICATED = ("refuse", "loopback", "anywhere")


class StoreConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where keys, tenants, the audit log (and later the ledger and prompts) are kept."""

    # `sqlite:///relative.db`, `sqlite:////absolute.db` or `postgresql://user:pass@host:5432/db`.
    # Default: $GATECORE_STORE_URL, else gatecore.db beside the config file.
    url: str | None = None
    # How often each worker checks the store for identity changes (revocations included).
    poll_interval_s: float = 0.25
    # PostgreSQL: connections each worker process may hold (a replica holds workers times this), and the
    # server-side `statement_timeout` of each (0: none), so a stuck query frees its connection.
    pool_size: int = 4
    statement_timeout_s: float = 30.0


class LedgerConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The usage ledger: one row per inference request, written to the store in batches."""

    enabled: bool = True
    # Where batches the store could not take are kept until it is back (append-only JSON lines).
    # Default: `<sqlite file>.spool/` beside a SQLite store, else a directory under the temp dir.
    spool_dir: str | None = None
    batch_rows: int = 500
    flush_interval_s: float = 0.2
    # A batch write slower than this goes to the spool instead (the store is slow or down).
    write_timeout_s: float = 2.0
    # Rows held in memory at most; past it, rows go straight to the spool.
    max_queue_rows: int = 50_000
    # How often the spool is retried while the store is unavailable.
    retry_interval_s: float = 1.0


class GatecoreConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    server: ServerConfig = ServerConfig()
    providers: list[ProviderConfig] = msgspec.field(default_factory=list)
    models: list[ModelConfig] = msgspec.field(default_factory=list)
    auth: AuthConfig = AuthConfig()
    store: StoreConfig = StoreConfig()
    limits: LimitsConfig = LimitsConfig()
    budgets: BudgetsConfig = BudgetsConfig()
    redis: RedisConfig | None = None
    ledger: LedgerConfig = LedgerConfig()
    routing: RoutingDefaults = RoutingDefaults()
    telemetry: TelemetryConfig = TelemetryConfig()
    pipeline: PipelineConfig = PipelineConfig()
    cache: CacheConfig = CacheConfig()
    guardrails: list[GuardrailConfig] = msgspec.field(default_factory=list)
    prompts: PromptsConfig = PromptsConfig()
    responses: ResponsesConfig = ResponsesConfig()


_BEDROCK_HOST = re.compile(r"bedrock-runtime(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com")


def bedrock_region(config: ProviderConfig) -> str | None:
    """The AWS region of a bedrock provider: `aws_region`, else the one its base URL names."""
    if config.aws_region:
        return config.aws_region
    found = _BEDROCK_HOST.search(config.base_url or "")
    return found.group(1) if found else None
