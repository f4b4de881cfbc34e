"""The `guard_input` stage: the model's guardrails on the request's texts, and `ctx.guard` for its answer.

Runs after routing and limits (it needs the route; a refused request costs no scan) and before the
cache and the upstream, on the hub-format body: the prompt-injection score first (on the client's own
words), then the PII guards (their rewrites become the body the upstream and the cache see), then the
external guards (webhooks, plugins), which see the rewritten texts. A model without guardrails pays
one dict lookup. The stage is a plain call unless the model has external guards (then it returns their
coroutine), so PII and injection checks add no await.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

import orjson

from gatecore.config.guardrails import GuardrailConfig
from gatecore.config.schema import GatecoreConfig
from gatecore.errors import GuardrailBlocked, InvalidRequest
from gatecore.guardrails.answer import AnswerCheck, stream_shape
from gatecore.guardrails.external import ExternalGuard, ask
from gatecore.guardrails.hub_texts import map_request
from gatecore.guardrails.injection import score, scored_texts
from gatecore.guardrails.moderation import ClassifierGuard, ModerationGuard
from gatecore.guardrails.pii import PiiGuard, apply_spans, count_spans, merge_spans
from gatecore.guardrails.plugins import PluginGuard
from gatecore.guardrails.tally import Tally
from gatecore.guardrails.vault import Vault
from gatecore.guardrails.webhook import WebhookGuard
from gatecore.request import RequestContext

log = logging.getLogger("gatecore.guardrails")
# Distinct guard-name combinations compiled at most (models by keys' attachments): a bound, not a tuning.
MAX_POLICIES = 4096


class InjectionGuard:
    """One configured `kind: prompt_injection` guard."""

    __slots__ = ("action", "name", "reroute_to", "threshold")

    def __init__(self, config: GuardrailConfig):
        self.name = config.name
        self.action = config.action
        self.threshold = config.threshold
        self.reroute_to = config.reroute_to

    def check(self, scores: list[float], tally: Tally) -> None:
        """Block or flag when a text scores at or above the threshold."""
        if scores and max(scores) >= self.threshold:
            tally.add(self.name, "prompt_injection", self.action)
            if self.action == "block":
                raise GuardrailBlocked(
                    f"Guardrail '{self.name}' blocked this request: it looks like a prompt injection."
                )
            flag(tally, self.name, self.reroute_to if self.action == "reroute" else None)


def flag(tally: Tally, name: str, reroute_to: str | None) -> None:
    """The request is flagged by guard `name` (the first flag names it); `reroute_to`: the model it
    is served with instead (pipeline/guard_reroute.py moves it there)."""
    tally.flagged = tally.flagged or name
    if reroute_to is not None and tally.reroute is None:
        tally.reroute = reroute_to


# Scores of texts seen lately, by the text's hash: a conversation sends its earlier turns again with
# every request, and they are scored once. Python's string hash is salted per process, so a client
# cannot aim a collision at it. Bounded: emptied when full.
_SCORES: dict[int, float] = {}
MAX_REMEMBERED_SCORES = 65_536


def scores_of(texts: list[str]) -> list[float]:
    """The injection score of each text, remembered."""
    out = []
    for text in texts:
        key = hash(text)
        found = _SCORES.get(key)
        if found is None:
            if len(_SCORES) >= MAX_REMEMBERED_SCORES:
                _SCORES.clear()
            found = _SCORES[key] = score(text)[0]
        out.append(found)
    return out


class Policy:
    """The compiled guards one model's requests go through, by side."""

    __slots__ = ("external", "external_out", "injection", "pii_in", "pii_out", "shape", "tokenizes")

    def __init__(self, guards: list[PiiGuard | InjectionGuard | ExternalGuard]):
        self.pii_in = tuple(g for g in guards if isinstance(g, PiiGuard) and "input" in g.sides)
        self.pii_out = tuple(g for g in guards if isinstance(g, PiiGuard) and "output" in g.sides)
        self.injection = tuple(g for g in guards if isinstance(g, InjectionGuard))
        external = [
            g for g in guards if isinstance(g, WebhookGuard | PluginGuard | ModerationGuard | ClassifierGuard)
        ]
        self.external = tuple(g for g in external if "input" in g.sides)
        self.external_out = tuple(g for g in external if "output" in g.sides)
        self.tokenizes = any("tokenize" in g.actions for g in self.pii_in)
        self.shape = stream_shape(self.pii_out, self.tokenizes)


CompiledGuard = PiiGuard | InjectionGuard | ExternalGuard


def compile_guard(config: GuardrailConfig) -> CompiledGuard:
    """One guard of `guardrails:`, compiled (config/guardrails.py validated it)."""
    if config.kind == "pii":
        return PiiGuard(config)
    if config.kind == "prompt_injection":
        return InjectionGuard(config)
    if config.kind == "webhook":
        return WebhookGuard(config)
    if config.kind == "moderation":
        return ModerationGuard(config)
    if config.kind == "classifier":
        return ClassifierGuard(config)
    return PluginGuard(config)


class GuardInput:
    """The stage: the guards compiled once per worker, and the policy of each combination of names
    (the model's, else the default guards, then the key's team's and the key's own, then a published
    prompt's) compiled on first use."""

    __slots__ = (
        "compiled",
        "config_defaults",
        "config_guards",
        "defaults",
        "guards",
        "models",
        "owners",
        "policies",
    )

    def __init__(self, config: GatecoreConfig):
        self.config_guards: dict[str, CompiledGuard] = {g.name: compile_guard(g) for g in config.guardrails}
        self.config_defaults = tuple(g.name for g in config.guardrails if g.default)
        self.guards = self.config_guards
        self.defaults = self.config_defaults
        self.models = {m.name: tuple(m.guardrails) for m in config.models if m.guardrails}
        self.policies: dict[tuple[str, ...], Policy] = {}
        # Stored guards (guardrails/stored.py): their team where one owns them, and each compiled
        # guard with the definition's time, so an unchanged one is not compiled again.
        self.owners: dict[str, str] = {}
        self.compiled: dict[str, tuple[float, CompiledGuard]] = {}

    def install(self, stored: list[tuple[GuardrailConfig, str | None, float]]) -> None:
        """Serve with these stored definitions (config, owning team, updated_at) beside the
        config's; a config guard's name always wins. A definition that fails to compile (a plugin
        that raises) is left out: requests that name it are refused, as for any missing guard."""
        guards = dict(self.config_guards)
        compiled: dict[str, tuple[float, CompiledGuard]] = {}
        owners: dict[str, str] = {}
        defaults = list(self.config_defaults)
        for config, team, at in stored:
            if config.name in guards:
                continue
            found = self.compiled.get(config.name)
            if found is None or found[0] != at:
                try:
                    found = (at, compile_guard(config))
                except Exception:
                    log.exception("stored guardrail '%s' could not be compiled; left out", config.name)
                    continue
            compiled[config.name] = found
            guards[config.name] = found[1]
            if team is not None:
                owners[config.name] = team
            elif config.default:
                defaults.append(config.name)
        self.compiled = compiled
        self.guards, self.owners, self.defaults = guards, owners, tuple(defaults)
        self.policies = {}

    def policy(self, names: tuple[str, ...]) -> Policy:
        """The compiled policy of these guard names; a name not configured refuses the request (a
        key's or team's metadata may name a guard the config no longer has: fail closed)."""
        policy = self.policies.get(names)
        if policy is None:
            missing = [n for n in names if n not in self.guards]
            if missing:
                raise GuardrailBlocked(f"Guardrail '{missing[0][:100]}' is attached but not configured.")
            if len(self.policies) >= MAX_POLICIES:
                self.policies.clear()
            policy = self.policies[names] = Policy([self.guards[n] for n in names])
        return policy

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        route = ctx.route
        names = self.models.get(route.name, self.defaults) if route is not None else self.defaults
        key = ctx.key
        if key is not None and key.guardrails:
            names = tuple(dict.fromkeys(names + key.guardrails))
        prompt = ctx.prompt
        if prompt is not None and prompt.guardrails:  # a published prompt's own (prompts/)
            names = tuple(dict.fromkeys(names + prompt.guardrails))
        if not names:
            return None
        if self.owners:  # a team's own guard serves that team's keys only
            self._check_owners(names, key.team.id if key is not None and key.team is not None else None)
        policy = self.policy(names)
        if ctx.body.lstrip()[:1] != b"{":
            return None  # a multipart upload (audio transcriptions): no text the guards read
        try:
            doc = orjson.loads(ctx.body)
        except orjson.JSONDecodeError:
            # Never skipped: a body the upstream reads as JSON is checked or refused.
            raise InvalidRequest("The request body could not be read for the guardrails.") from None
        if not isinstance(doc, dict):
            return None
        tally = Tally()
        vault = Vault() if policy.tokenizes else None
        # Set first: the metrics and the access log read its counts, blocked requests' included.
        ctx.guard = AnswerCheck(
            policy.pii_out, vault, tally, policy.external_out, ctx.client_model, ctx.request_id, policy.shape
        )
        try:
            if policy.injection:
                scores = scores_of(scored_texts(doc))
                for guard in policy.injection:
                    guard.check(scores, tally)
            if policy.pii_in:
                guards = policy.pii_in

                def rewrite(text: str) -> str:
                    if len(guards) == 1:  # the usual policy: no merge to do
                        spans = guards[0].spans(text, vault, tally, False)
                        if not spans:
                            return text
                    else:
                        spans = merge_spans([g.spans(text, vault, tally, False) for g in guards])
                    count_spans(tally, spans)
                    return apply_spans(text, spans)

                if map_request(doc, rewrite):
                    ctx.body = orjson.dumps(doc)
        except GuardrailBlocked:
            ctx.body_capture = None  # a body logged for the key would hold what was blocked
            raise
        if policy.external:
            return self._external(ctx, doc, policy.external, tally)
        return None

    def _check_owners(self, names: tuple[str, ...], team: str | None) -> None:
        for name in names:
            owner = self.owners.get(name)
            if owner is not None and owner != team:
                raise GuardrailBlocked(f"Guardrail '{name[:100]}' belongs to another team.")

    async def _external(
        self, ctx: RequestContext, doc: dict[str, Any], guards: tuple[ExternalGuard, ...], tally: Tally
    ) -> None:
        for guard in guards:
            verdict = await ask(guard, _texts(doc), "input", ctx.client_model, ctx.request_id, tally)
            if verdict is None:
                ctx.body_capture = None
                raise GuardrailBlocked(f"Guardrail '{guard.name}' could not check this request.")
            if verdict.action == "block":
                ctx.body_capture = None
                raise GuardrailBlocked(f"Guardrail '{guard.name}' blocked this request.")
            if verdict.action == "flag":
                flag(tally, guard.name, guard.reroute_to)
            elif verdict.action == "modify" and verdict.texts is not None and _replace(doc, verdict.texts):
                ctx.body = orjson.dumps(doc)


def _texts(doc: dict[str, Any]) -> list[str]:
    """Every text of the request, in the order `map_request` visits them."""
    texts: list[str] = []

    def keep(text: str) -> str:
        texts.append(text)
        return text

    map_request(doc, keep)
    return texts


def _replace(doc: dict[str, Any], texts: list[str]) -> bool:
    """The request's texts replaced, in order, by `texts` (a webhook's `modify`)."""
    replacements = iter(texts)
    return map_request(doc, lambda _text: next(replacements))


_BUILT: dict[int, tuple[GatecoreConfig, GuardInput]] = {}


def guard_stage(config: GatecoreConfig) -> GuardInput:
    """The stage. Every inference route's chain shares one: the scanners are compiled once per
    worker and config, and stored definitions (guardrails/stored.py) are installed into it. With
    nothing attached a request pays one dict lookup and a few attribute reads."""
    built = _BUILT.get(id(config))
    if built is None or built[0] is not config:
        _BUILT.clear()
        built = _BUILT[id(config)] = (config, GuardInput(config))
    return built[1]
