"""The worker's composition root: one config turned once into everything a worker serves with.

It builds the providers and their connection pools, the route table and its monitors, the stages'
shared parts, the chain of every inference route (pipeline/chain.py), the recorders, and the store
with the identity sync and the admin API; `start` and `aclose` run the worker's life. The server
(server/app.py) holds one and asks it for its chains.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

import msgspec

from gatecore.admin.deployments_api import DeploymentsApi
from gatecore.admin.guardrails_api import GuardrailsApi
from gatecore.admin.prompts_api import PromptsApi
from gatecore.admin.router import AdminApi
from gatecore.api.openai import ChatFields, CompletionFields, EmbeddingFields
from gatecore.auth.stage import AuthStage
from gatecore.cache.stage import Cache, build_cache
from gatecore.config.guardrails import GuardrailConfig
from gatecore.config.schema import GatecoreConfig
from gatecore.config.telemetry import tracing_enabled
from gatecore.guardrails.log_redactor import log_redactor
from gatecore.guardrails.stage import guard_stage
from gatecore.guardrails.stored import GuardrailRepository, StoredGuardrails
from gatecore.identity.repository import IdentityRepository
from gatecore.identity.secrets import hash_secret
from gatecore.identity.sync import IdentitySync
from gatecore.ledger.recorder import LedgerRecorder
from gatecore.limits.local import open_table
from gatecore.limits.stage import Limits
from gatecore.pipeline.chain import LINKS, Chain, ChainParts, Link, Stage, build_steps
from gatecore.pipeline.count_tokens import CountTokens, decode_count_tokens
from gatecore.pipeline.decode import DecodeChat, DecodeOpenAI, decode_messages
from gatecore.pipeline.decode_gemini import DecodeGemini, GeminiCountTokens, decode_gemini_count
from gatecore.pipeline.decode_responses import DecodeResponses
from gatecore.pipeline.internal_call import InternalCall
from gatecore.pipeline.passthrough import (
    CompactFields,
    DecodeJsonPassthrough,
    ImageFields,
    ModerationFields,
    RerankFields,
    SpeechFields,
    decode_transcription,
)
from gatecore.pipeline.plugins import placed_links
from gatecore.pipeline.prompt_steps import PromptSteps, step_links
from gatecore.pipeline.recording import Recorder, Recording
from gatecore.pipeline.responses_input_tokens import CountResponsesTokens
from gatecore.pipeline.responses_recorder import StoredResponsesRecorder
from gatecore.pricing.book import PriceBook
from gatecore.prompts.catalog import PromptCatalog
from gatecore.prompts.chat_field import ChatWithPrompt
from gatecore.prompts.repository import PromptRepository
from gatecore.prompts.stage import PromptStage
from gatecore.providers.base import Provider, build_provider
from gatecore.request import CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, Endpoint
from gatecore.request.context import (
    COMPACT,
    GEMINI,
    IMAGES,
    MODERATIONS,
    RERANK,
    RESPONSES,
    SPEECH,
    TRANSCRIPTIONS,
)
from gatecore.routing.compile import RoutingMonitors, build_routes
from gatecore.routing.pool_gate import pool_gate
from gatecore.store import Store, StoreError, open_store
from gatecore.store.migrations import migrate
from gatecore.stored_responses import ResponseStore
from gatecore.telemetry.access_log import AccessLog
from gatecore.telemetry.deployment_state import DeploymentStates
from gatecore.telemetry.metrics import MetricsRecorder, joined_series
from gatecore.telemetry.worker_files import worker_files
from gatecore.upstream.deadlines import DeadlineSweeper
from gatecore.upstream.pool import ConnectionPool, PoolSet

if TYPE_CHECKING:
    from gatecore.telemetry.tracing import Tracing


log = logging.getLogger("gatecore")
# Links of the inference chain that /v1/messages/count_tokens leaves out: it is not in the ledger
# (no run tag, no body log) and costs no GPU time.
_NOT_COUNTED = ("run_tag", "body_capture", "gpu_clock")
STORE_RETRY_S = 2.0  # between attempts to open a store that was down at start


class Worker:
    """Everything a worker needs to serve requests, built from one config snapshot."""

    __slots__ = (
        "_shares_io",
        "_store_retry",
        "access_log",
        "admin",
        "auth",
        "cache",
        "chains",
        "config",
        "count_tokens",
        "gemini_chains",
        "identity",
        "input_tokens",
        "ledger",
        "limits",
        "metrics",
        "monitors",
        "pool_gate",
        "pools",
        "prices",
        "prompts",
        "providers",
        "recording",
        "responses",
        "routes",
        "stage_names",
        "store",
        "sweeper",
        "tracing",
        "unrouted",
    )

    def __init__(self, config: GatecoreConfig, previous: Worker | None = None, generation: int = 0):
        """`previous`: the worker this one replaces on a config reload (server/reload.py); its
        upstream connection pools (and their deadline sweeper) are taken over, so a reload keeps
        them warm. `generation` counts this process's reloads (0 at start)."""
        self.config = config
        self.tracing: Tracing | None = None
        traced = tracing_enabled(config.telemetry.tracing, os.environ)
        pool_class = ConnectionPool
        if traced:
            # Imported here: with tracing off, the tracer is never loaded.
            from gatecore.telemetry.traced_pool import TracedConnectionPool

            pool_class = TracedConnectionPool
        self._shares_io = False  # True once a newer worker took over the pools
        self.sweeper: DeadlineSweeper
        self.pools: PoolSet
        if previous is not None and previous.pools.pool_class is pool_class:
            previous._shares_io = True
            self.sweeper, self.pools = previous.sweeper, previous.pools
        else:
            self.sweeper = DeadlineSweeper()
            self.pools = PoolSet(self.sweeper, pool_class)
        self.providers: dict[str, Provider] = {
            p.name: build_provider(p, self.pools) for p in config.providers
        }
        # The server's shared counters (one mapping per worker): limits and GPU clocks live there.
        counters = open_table(config.limits.table_slots)
        self.prices = PriceBook(counters)
        self.routes = build_routes(config, self.providers, self.prices)
        # Engine load polling, health checks and outlier ejection, in the background.
        self.monitors = RoutingMonitors(config, self.routes, self.pools)
        self.auth = AuthStage(config.auth)
        if previous is not None:
            self.auth.take_stored(previous.auth)
        self.limits = Limits(config, self.prices, counters)
        # Stored responses of /v1/responses (the store is attached once it opens).
        self.responses = ResponseStore(config.responses.retention_days, config.responses.store)
        # The chains: the same links for every inference route, with that route's decode stage.
        parts = ChainParts(config, self.auth, self.routes, self.prices, self.limits, self.sweeper)
        self.cache: Cache | None = build_cache(config, self.prices)
        parts.cache = self.cache
        # Fair queuing of models served by local engines (`models[].queue`); None when none has one.
        self.pool_gate = parts.queue = pool_gate(config, self.routes)
        links = placed_links(LINKS, config.pipeline)
        self.chains: dict[str, Chain] = {}
        recording = self.recording = Recording(())
        chat_decode = DecodeOpenAI(msgspec.json.Decoder(ChatFields))
        # Published prompts: a chain's earlier steps run through the chat links without the client's;
        # the prompt route's decode renders a prompt (its catalog comes with the store); chat
        # requests may name a stored prompt too (`"prompt": {...}`).
        parts.decode = chat_decode
        steps = PromptSteps(Chain(CHAT, build_steps(parts, tuple(step_links(links))), recording, None))
        self.prompts = PromptStage(None, chat_decode, steps)
        decoders: dict[str, tuple[Endpoint, Stage]] = {
            "chat": (CHAT, DecodeChat(chat_decode.decoder, ChatWithPrompt(self.prompts).prompt_call)),
            "completions": (COMPLETIONS, DecodeOpenAI(msgspec.json.Decoder(CompletionFields))),
            "embeddings": (EMBEDDINGS, DecodeOpenAI(msgspec.json.Decoder(EmbeddingFields))),
            "messages": (MESSAGES, decode_messages),
            # The rest of OpenAI's surface, passed through (pipeline/passthrough.py).
            "rerank": (RERANK, DecodeJsonPassthrough(RerankFields)),
            "moderations": (MODERATIONS, DecodeJsonPassthrough(ModerationFields)),
            "audio_speech": (SPEECH, DecodeJsonPassthrough(SpeechFields)),
            "audio_transcriptions": (TRANSCRIPTIONS, decode_transcription),
            "images": (IMAGES, DecodeJsonPassthrough(ImageFields)),
            "responses_compact": (COMPACT, DecodeJsonPassthrough(CompactFields)),
            "responses": (RESPONSES, DecodeResponses(self.responses, self.prompts)),
        }
        stored = StoredResponsesRecorder(self.responses)  # the Responses route's own recorder
        for api, (endpoint, decode) in decoders.items():
            parts.decode = decode
            after = stored if endpoint is RESPONSES else None
            self.chains[api] = Chain(endpoint, build_steps(parts, links), recording, None, after)
        if self.cache is not None and self.cache.semantic is not None:  # its embeddings are requests too
            self.cache.semantic.embed = InternalCall(self.chains["embeddings"], "/v1/embeddings").post
        # Every timed stage's name, in order (x-gatecore-timing, the stage histogram, the stage spans).
        self.stage_names = tuple(parts.stage_names)
        parts.decode = self.prompts
        self.chains["prompts"] = Chain(CHAT, build_steps(parts, links), recording, None)
        # `/v1/messages/count_tokens`: the chain up to the limits (rpm and concurrency count it; its
        # reservations are settled by the limits' recorder alone), then the count is the answer.
        parts.decode = decode_count_tokens
        counting = [
            *(link for link in links[: _position(links, "limits") + 1] if link.name not in _NOT_COUNTED),
            Link("count", lambda p: CountTokens(), timed=False),
        ]
        self.count_tokens = Chain(MESSAGES, build_steps(parts, counting), Recording((self.limits,)), None)
        # The Gemini API (server/gemini_api.py): a chain per method and stream form, and its count.
        self.gemini_chains: dict[str, Chain] = {}
        for name, decode in (
            ("generate", DecodeGemini(stream=False, sse=False)),
            ("stream_sse", DecodeGemini(stream=True, sse=True)),
            ("stream_json", DecodeGemini(stream=True, sse=False)),
        ):
            parts.decode = decode
            self.gemini_chains[name] = Chain(GEMINI, build_steps(parts, links), recording, None)
        parts.decode = decode_gemini_count
        counting[-1] = Link("count", lambda p: GeminiCountTokens(), timed=False)
        self.gemini_chains["count"] = Chain(
            GEMINI, build_steps(parts, counting), Recording((self.limits,)), None
        )
        # `/v1/responses/input_tokens`: the same, after the Responses decode.
        parts.decode = DecodeResponses(self.responses)
        counting[-1] = Link("count", lambda p: CountResponsesTokens(), timed=False)
        self.input_tokens = Chain(RESPONSES, build_steps(parts, counting), Recording((self.limits,)), None)
        recorders: list[Recorder] = []
        # The ledger first: it prices the request (ctx.cost_usd) for the recorders after it.
        self.ledger: LedgerRecorder | None = None
        if config.ledger.enabled:
            assert config.store.url is not None  # read_config fills in the default
            self.ledger = LedgerRecorder(config.ledger, self.prices, config.store.url)
            recorders.append(self.ledger)
            self.limits.spent_since = self.ledger.spend_since
        self.access_log: AccessLog | None = None
        if config.server.access_log:
            body_log_bytes = config.server.body_log_max_bytes
            access_log = AccessLog(body_log_bytes=body_log_bytes)
            access_log.redactor = log_redactor(config)  # the PII guardrails' scanner, when configured
            self.access_log = access_log
            recorders.append(access_log)
        self.metrics: MetricsRecorder | None = None
        telemetry = config.telemetry
        if telemetry.metrics:  # after the ledger: it reads ctx.cost_usd
            self.metrics = MetricsRecorder(
                lambda: recording.in_flight,
                worker_files(telemetry.metrics_flush_s, generation),
                self.stage_names,
                DeploymentStates(
                    (route.name, d.id, d.breaker)
                    for route in self.routes.all_routes()
                    for d in route.deployments
                ),
            )
            recorders.append(self.metrics)
            self.metrics.extra = joined_series(
                [source.series for source in (self.cache, self.pool_gate) if source is not None]
            )
        if traced:  # after the ledger: the server span carries ctx.cost_usd
            from gatecore.telemetry.tracing import Tracing

            kinds = {p.name: p.kind for p in config.providers}
            self.tracing = Tracing(telemetry.tracing, kinds, self.stage_names, self.sweeper)
            recorders.append(self.tracing)
            for chain in (*self.chains.values(), *self.gemini_chains.values()):
                chain.tracing = self.tracing
        if self.cache is not None:  # stores the answers of misses
            recorders.append(self.cache.writer)
        if self.pool_gate is not None:  # frees the fair queue's slots, sending the next on
            recorders.append(self.pool_gate)
        # After the ledger's recorder (it sets ctx.cost_usd): settles reservations, frees slots.
        recorders.append(self.limits)
        recording.recorders = tuple(recorders)
        # Requests to paths gatecore does not serve: the access log and the metrics alone.
        self.unrouted = Recording(tuple(r for r in recorders if isinstance(r, AccessLog | MetricsRecorder)))
        self.store: Store | None = None
        self.identity: IdentitySync | None = None
        self.admin: AdminApi | None = None
        self._store_retry: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the routing monitors (engine load, health checks, outliers) and the metrics
        snapshots, open the store, apply migrations and load the stored keys (the worker's start)."""
        self.monitors.start()
        if self.tracing is not None:
            self.tracing.start()
        if self.metrics is not None:
            self.metrics.start()
        if self.auth.jwt is not None:
            await self.auth.jwt.start()
        if not await self._open_store(first=True):
            # Serve with the master and config keys meanwhile; /readyz and the admin API say 503.
            # The ledger spools its rows and keeps trying the store on its own.
            if self.ledger is not None:
                await self.ledger.start(None)
            self._store_retry = asyncio.get_running_loop().create_task(self._reopen_store())

    async def _open_store(self, first: bool) -> bool:
        url = self.config.store.url
        assert url is not None  # read_config fills in the default
        try:
            store = await open_store(url, self.config.store.pool_size, self.config.store.statement_timeout_s)
        except StoreError as exc:
            if first:
                log.error("the store is unavailable (%s); retrying every %.0f s", exc, STORE_RETRY_S)
            return False
        try:
            await migrate(store)
        except StoreError as exc:
            await store.close()
            if first:
                log.error("cannot migrate the store (%s); retrying every %.0f s", exc, STORE_RETRY_S)
            return False
        self.store = store
        self.responses.attach(store)
        if not first:
            log.warning("the store is reachable; stored keys are served from now on")
        if first and self.ledger is not None:
            await self.ledger.start(store)
        secret = hash_secret(self.config.auth)
        # The auth stage's hasher keys stored hashes too (its secret is the configured one when set).
        repository = IdentityRepository(self.store, self.auth.hasher if secret else None)
        self.identity = IdentitySync(repository, self.auth, self.config.store.poll_interval_s)
        # Guard definitions of the admin API follow the identity poll (guardrails/stored.py).
        guard_repository = GuardrailRepository(store)
        stored_guards = StoredGuardrails(guard_repository, guard_stage(self.config), self._stored_pii)
        self.identity.followers.append(stored_guards.reload)
        await self.identity.start()
        model_names = frozenset(self.routes.names())
        self.prompts.catalog = catalog = PromptCatalog(PromptRepository(store))
        self.admin = AdminApi(
            repository,
            self.auth,
            model_names,
            self.config.auth.rotation_grace_s,
            DeploymentsApi(self.routes),
            self.cache,
            PromptsApi(catalog, repository, model_names, frozenset(g.name for g in self.config.guardrails)),
            GuardrailsApi(
                list(self.config.guardrails), model_names, guard_repository, stored_guards, repository
            ),
        )
        return True

    def _stored_pii(self, stored: list[GuardrailConfig]) -> None:
        """The body log's redactor covers the stored PII guards too (their patterns, and what a
        tokenizing one restores in answers)."""
        if self.access_log is not None:
            self.access_log.redactor = log_redactor(self.config, stored)

    async def _reopen_store(self) -> None:
        while True:
            await asyncio.sleep(STORE_RETRY_S)
            if await self._open_store(first=False):
                return

    @property
    def ready(self) -> bool:
        """The stored keys are loaded (by this worker's sync, or taken over on a reload)."""
        return (self.identity is not None and self.identity.loaded) or self.auth.stored is True

    async def aclose(self) -> None:
        """Shut the worker down: let requests still in flight finish (their last bytes may already be
        with the client while the task has yet to run its recorders), then flush and close."""
        deadline = time.monotonic() + self.config.server.shutdown_grace_s
        recording = self.recording
        # A poll, not an Event: shutdown is the only waiter, and requests pay nothing to be counted.
        while recording.in_flight and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        if recording.in_flight:
            log.warning("%d requests still in flight at shutdown; they are not recorded", recording.in_flight)
        if self._store_retry is not None:
            self._store_retry.cancel()
        await self.monitors.aclose()
        self.unrouted.record_batch()
        await recording.aclose()  # those finished in the loop's last turn first
        await self.responses.aclose()  # stored responses still being written
        if self.identity is not None:
            await self.identity.close()
        if self.auth.jwt is not None:
            await self.auth.jwt.close()
        if self.store is not None:
            await self.store.close()
        self.close()

    def close(self) -> None:
        if not self._shares_io:  # else the pools now belong to the worker that replaced this one
            self.sweeper.close()
            self.pools.close()


def _position(links: tuple[Link, ...], name: str) -> int:
    return next(i for i, link in enumerate(links) if link.name == name)
