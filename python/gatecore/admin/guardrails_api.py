"""`/admin/v1/guardrails`: the guard definitions, config ones read-only, stored ones written here.

Who may do what: `admin` (and the master key) defines global guards of every kind. A `team_admin`
defines guards of its own team only, and only the in-process kinds (`pii`, `prompt_injection`, never
`default` or `reroute`): an external kind would make the gateway POST to a URL of the caller's
choosing (a request forgery into the operator's network), a default or a reroute would reach other
teams' traffic. A team's guard is attachable to that team's keys only; a request of any other key
that names it is refused (guardrails/stage.py). Readers see the config's guards, the global stored
ones and, when confined to a team, their own team's. Secrets (`api_key`, header values) are never
shown back and never audited.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from gatecore.admin.access import Caller
from gatecore.admin.bounds import check_json_value
from gatecore.config.guardrails import GuardrailConfig, validate_guardrails
from gatecore.errors import Conflict, Forbidden, NotFound, Unprocessable
from gatecore.guardrails.stored import GuardrailRepository, StoredGuard, StoredGuardrails
from gatecore.identity.records import TEAM
from gatecore.identity.repository import IdentityRepository

GuardName = Annotated[str, Meta(min_length=1, max_length=100, pattern="^[A-Za-z0-9][A-Za-z0-9_.:-]*$")]
PiiAction = Literal["redact", "mask", "block", "tokenize", "log"]
Short = Annotated[str, Meta(max_length=100)]
IN_PROCESS = ("pii", "prompt_injection")
HIDDEN = "[hidden]"


class CustomPatternIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Annotated[str, Meta(min_length=1, max_length=50, pattern="^[A-Za-z_][A-Za-z0-9_]*$")]
    # A regex in the `regex` crate's syntax, compiled in Rust when the definition is written.
    pattern: Annotated[str, Meta(min_length=1, max_length=2000)]
    action: PiiAction = "redact"


class GuardrailSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`PUT /admin/v1/guardrails/{name}`: a whole definition (README, "Guardrails"; the fields of
    a `guardrails:` entry but its name)."""

    kind: Literal["pii", "prompt_injection", "webhook", "moderation", "classifier", "plugin"]
    default: bool = False
    apply_to: Annotated[list[Literal["input", "output"]], Meta(min_length=1, max_length=2)] = msgspec.field(
        default_factory=lambda: ["input", "output"]
    )
    entities: Annotated[dict[Short, PiiAction], Meta(max_length=64)] = msgspec.field(default_factory=dict)
    custom: Annotated[list[CustomPatternIn], Meta(max_length=64)] = msgspec.field(default_factory=list)
    deny_list: Annotated[list[Annotated[str, Meta(min_length=1, max_length=100)]], Meta(max_length=1000)] = (
        msgspec.field(default_factory=list)
    )
    deny_action: PiiAction = "block"
    window_chars: Annotated[int, Meta(ge=0, le=65536)] = 32
    overlap_chars: Annotated[int, Meta(ge=16, le=4096)] = 64
    action: Literal["block", "flag", "reroute"] = "block"
    threshold: Annotated[float, Meta(gt=0, le=1)] = 0.8
    reroute_to: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    url: Annotated[str, Meta(max_length=2000, pattern="^https?://")] | None = None
    timeout_s: Annotated[float, Meta(gt=0, le=60)] = 2.0
    on_error: Literal["allow", "block"] = "allow"
    headers: Annotated[
        dict[Annotated[str, Meta(min_length=1, max_length=100)], Annotated[str, Meta(max_length=2000)]],
        Meta(max_length=20),
    ] = msgspec.field(default_factory=dict)
    model: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    # Write-only: shown back as "[hidden]".
    api_key: Annotated[str, Meta(min_length=1, max_length=500)] | None = None
    categories: Annotated[list[Annotated[str, Meta(min_length=1, max_length=50)]], Meta(max_length=64)] = (
        msgspec.field(default_factory=list)
    )
    use: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class GuardrailCreate(GuardrailSpec, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/guardrails`. `team` (an id; a team_admin's own by default) makes the guard
    attachable to that team's keys only."""

    name: GuardName
    team: Annotated[str, Meta(min_length=1, max_length=200)] | None = None


class GuardrailOut(msgspec.Struct, kw_only=True):
    name: str
    kind: str
    # config: from the config file, read-only here; store: defined through this API.
    source: Literal["config", "store"]
    read_only: bool
    team: str | None
    created_by: str | None
    updated_at: float | None
    # The definition, `api_key` and header values shown as "[hidden]".
    spec: dict[str, Any]


class GuardrailList(msgspec.Struct):
    data: list[GuardrailOut]


class GuardrailsApi:
    """Definitions of this worker's config plus the stored ones (`stored`, reloaded after writes)."""

    def __init__(
        self,
        config_guards: list[GuardrailConfig],
        models: frozenset[str],
        repository: GuardrailRepository,
        stored: StoredGuardrails,
        identity: IdentityRepository,
    ):
        self.identity = identity
        self.config_guards = {g.name: g for g in config_guards}
        self.models = models
        self.repository = repository
        self.stored = stored

    async def index(self, caller: Caller) -> GuardrailList:
        # Read from the store, not installed: a read never recompiles this worker's guards.
        stored = await self.repository.all()
        data = [_out(g, "config", None, None, None) for g in self.config_guards.values()]
        data += [
            _out(s.config, "store", s.team_id, s.created_by, s.updated_at)
            for s in stored
            if s.team_id is None or caller.scope is None or s.team_id == caller.scope
        ]
        return GuardrailList(data)

    async def get(self, caller: Caller, name: str) -> GuardrailOut:
        config = self.config_guards.get(name)
        if config is not None:
            return _out(config, "config", None, None, None)
        found = await self._stored(caller, name)
        return _out(found.config, "store", found.team_id, found.created_by, found.updated_at)

    async def create(self, caller: Caller, body: GuardrailCreate) -> GuardrailOut:
        caller.require_writer()
        team = body.team
        if caller.scope is not None:
            team = team or caller.scope
        if team is not None:
            try:
                team = (await self.identity.tenant(TEAM, team)).id  # an id or a name
            except NotFound:
                raise Unprocessable(
                    f"Unknown team '{team[:100]}'.", param="team", code="unknown_team"
                ) from None
            caller.require_team(team)
        config = self._checked(caller, body, body.name, team)
        if body.name in self.config_guards:
            raise Conflict(f"Guardrail '{body.name}' is defined in the config.", code="guardrail_exists")
        await self.repository.create(config, team, caller.actor)
        await self.stored.reload()
        return await self.get(caller, body.name)

    async def update(self, caller: Caller, name: str, body: GuardrailSpec) -> GuardrailOut:
        caller.require_writer()
        if name in self.config_guards:
            raise Conflict(f"Guardrail '{name[:100]}' is defined in the config: read-only here.")
        found = await self._stored(caller, name)
        if found.team_id is None:
            caller.require_admin()  # a global guard reaches every team
        config = self._checked(caller, body, name, found.team_id)
        await self.repository.update(config, found.team_id, caller.actor)
        await self.stored.reload()
        return await self.get(caller, name)

    async def delete(self, caller: Caller, name: str) -> None:
        caller.require_writer()
        if name in self.config_guards:
            raise Conflict(f"Guardrail '{name[:100]}' is defined in the config: read-only here.")
        found = await self._stored(caller, name)
        if found.team_id is None:
            caller.require_admin()
        await self.repository.delete(name, caller.actor)
        await self.stored.reload()

    async def _stored(self, caller: Caller, name: str) -> StoredGuard:
        for stored in await self.repository.all():
            # Another team's guard is not there for a team's caller (nor is its name confirmed).
            if stored.config.name == name and (
                caller.scope is None or stored.team_id in (None, caller.scope)
            ):
                return stored
        raise NotFound(f"No guardrail '{name[:100]}'.", code="guardrail_not_found")

    def _checked(self, caller: Caller, body: GuardrailSpec, name: str, team: str | None) -> GuardrailConfig:
        """The definition as a config entry, refused (403) past the caller's rights or (422) when
        the config's own checks fail: regexes compiled in Rust, entity types, URLs, models."""
        if team is None:
            caller.require_admin()  # a global guard: attachable anywhere, or a default
        elif caller.scope is not None and (
            body.kind not in IN_PROCESS or body.default or body.action == "reroute" or body.reroute_to
        ):
            raise Forbidden(
                "A team's guardrail is of kind pii or prompt_injection, without default or reroute."
            )
        if team is not None and body.default:
            raise Unprocessable("A team's guardrail cannot be a default for every model.", param="default")
        check_json_value(body.options, "options")
        fields = msgspec.structs.asdict(body)
        fields.pop("team", None)
        fields["name"] = name
        config = msgspec.convert(msgspec.to_builtins(fields), GuardrailConfig)
        errors = validate_guardrails([config], {m: [] for m in self.models})
        if errors:
            first = errors[0].removeprefix("guardrails[0].")
            raise Unprocessable(
                f"Invalid guardrail: {'; '.join(e.removeprefix('guardrails[0].') for e in errors)[:600]}",
                param=first.split(":")[0][:100],
            )
        return config


def _out(
    config: GuardrailConfig,
    source: Literal["config", "store"],
    team: str | None,
    by: str | None,
    at: float | None,
) -> GuardrailOut:
    spec = msgspec.to_builtins(config)
    spec.pop("name", None)
    if spec.get("api_key"):
        spec["api_key"] = HIDDEN
    spec["headers"] = {k: HIDDEN for k in spec.get("headers", {})}
    return GuardrailOut(
        name=config.name,
        kind=config.kind,
        source=source,
        read_only=source == "config",
        team=team,
        created_by=by,
        updated_at=at,
        spec=spec,
    )
