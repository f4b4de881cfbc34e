"""`/admin/v1/prompts`: publish versions, read them, move labels (promote, rollback, A/B splits),
diff two versions, per-version stats.

Writes need a writer role (admin, team_admin); a key that belongs to a team sees and changes only
its team's prompts and publishes into its team; admins and the master key see every prompt and may
publish for any team (`team`) or none (a global prompt, callable by every key).
"""

from __future__ import annotations

import difflib
import re
import time
from typing import Annotated, Any

import msgspec
from msgspec import Meta

from gatecore.admin.access import Caller, check_models
from gatecore.admin.convert import to_datetime
from gatecore.admin.usage_api import parse_time
from gatecore.errors import InvalidRequest, NotFound, Unprocessable
from gatecore.identity.records import TEAM
from gatecore.identity.repository import IdentityRepository
from gatecore.prompts.catalog import PromptCatalog
from gatecore.prompts.repository import PromptHead
from gatecore.prompts.spec import SPEC_ENCODER, Compiled, PromptSpec, decode_spec

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_SPEC = msgspec.json.Decoder(PromptSpec)


class LabelMove(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`PUT /admin/v1/prompts/{name}/labels/{label}`: one version, or a split by weight, sticky per
    the call's `user` or a request header (`header:<name>`) when asked."""

    version: Annotated[int, Meta(ge=1, le=1_000_000)] | None = None
    versions: (
        Annotated[dict[str, Annotated[float, Meta(ge=0, le=1e6)]], Meta(min_length=1, max_length=16)] | None
    ) = None
    sticky: Annotated[str, Meta(pattern=r"^(user|header:[a-z0-9-]{1,100})$")] | None = None


class PromptsApi:
    """The prompt routes of one worker's admin API."""

    def __init__(
        self,
        catalog: PromptCatalog,
        identity: IdentityRepository,
        models: frozenset[str],
        guardrails: frozenset[str] = frozenset(),
    ):
        self.catalog = catalog
        self.repository = catalog.repository
        self.identity = identity
        self.models = models
        self.guardrails = guardrails  # the names a prompt's `guardrail` may take (config `guardrails:`)

    async def publish(
        self, caller: Caller, name: str | None, body: bytes, if_changed: bool = False
    ) -> dict[str, Any]:
        """A new version (the prompt's first when the name is new); with `if_changed` (`gatecore
        prompts push`), none when the latest version is the same."""
        caller.require_writer()
        spec = _decode_spec(body)
        if name is not None:
            if spec.name is not None and spec.name != name:
                raise InvalidRequest("'name' differs from the path's.", param="name")
            spec.name = name
        if spec.name is None:
            raise InvalidRequest("A prompt needs a 'name'.", param="name")
        team_id = await self._owner(caller, spec.team)
        spec.team = team_id
        if spec.model is not None:
            check_models([spec.model], self.models)
        if spec.guardrail is not None and spec.guardrail not in self.guardrails:
            raise InvalidRequest(
                f"No guardrail '{spec.guardrail[:100]}' is configured (config `guardrails:`).",
                param="guardrail",
            )
        compiled = Compiled(spec, 0)  # 400 for a template that does not render, a chain that loops
        if compiled.steps:
            await self._check_steps(compiled, team_id)
        try:
            existing: PromptHead | None = await self.catalog.repository.head(spec.name)
        except NotFound:
            existing = None
        if existing is not None:
            caller.require_team(existing.team_id)
        kind = "chain" if compiled.steps else "template"
        encoded = SPEC_ENCODER.encode(spec).decode()
        if if_changed and existing is not None:
            latest = await self.repository.version(spec.name, existing.latest)
            if latest.spec == encoded:
                return {
                    "name": spec.name,
                    "version": existing.latest,
                    "kind": kind,
                    "team_id": team_id,
                    "unchanged": True,
                }
        version = await self.repository.publish(spec.name, kind, team_id, encoded, caller.actor)
        self.catalog.forget(spec.name)
        return {
            "name": spec.name,
            "version": version,
            "kind": kind,
            "team_id": team_id,
            "labels": ["production"] if version == 1 else [],
        }

    async def index(self, caller: Caller) -> dict[str, Any]:
        heads = await self.repository.heads(caller.scope, caller.scope is None)
        return {"data": [_head_out(h) for h in heads]}

    async def get(self, caller: Caller, name: str) -> dict[str, Any]:
        head = await self._head(caller, name)
        versions = await self.repository.versions(name)
        out = _head_out(head)
        out["versions"] = [
            {
                "version": v.version,
                "created_by": v.created_by,
                "created_at": to_datetime(v.created_at),
                "description": decode_spec(v.spec).description,
            }
            for v in versions
        ]
        return out

    async def version(self, caller: Caller, name: str, number: str) -> dict[str, Any]:
        await self._head(caller, name)
        row = await self.repository.version(name, _number(number, "version"))
        return {
            "name": name,
            "version": row.version,
            "created_by": row.created_by,
            "created_at": to_datetime(row.created_at),
            "spec": msgspec.json.decode(row.spec),
        }

    async def move_label(self, caller: Caller, name: str, label: str, body: bytes) -> dict[str, Any]:
        """Point a label at a version or split it (a rollback is moving it back)."""
        caller.require_writer()
        if not _LABEL.match(label):
            raise InvalidRequest("A label is 1-100 letters, digits, '-', '_' or '.'.", param="label")
        await self._head(caller, name)
        try:
            move = msgspec.json.decode(body, type=LabelMove)
        except msgspec.ValidationError as exc:
            raise InvalidRequest(f"Invalid label body: {str(exc)[:200]}.") from None
        except msgspec.DecodeError:
            raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None
        if (move.version is None) == (move.versions is None):
            raise InvalidRequest("Give 'version' or 'versions' (a split by weight).", param="version")
        if move.version is not None:
            versions = {move.version: 1.0}
        else:
            assert move.versions is not None
            versions = {_number(k, "versions"): w for k, w in move.versions.items()}
            if sum(versions.values()) <= 0:
                raise InvalidRequest("A split needs a positive weight.", param="versions")
        await self.repository.set_label(name, label, versions, move.sticky, caller.actor)
        self.catalog.forget(name)
        return {
            "name": name,
            "label": label,
            "versions": {str(k): v for k, v in versions.items()},
            "sticky": move.sticky,
        }

    async def diff(self, caller: Caller, name: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """A unified diff of two versions' specs (`from`, `to`; default the last two)."""
        head = await self._head(caller, name)
        to = _number(query.get("to", [str(head.latest)])[-1], "to")
        start = _number(query.get("from", [str(max(1, to - 1))])[-1], "from")
        a, b = await self.repository.version(name, start), await self.repository.version(name, to)
        lines = difflib.unified_diff(
            _pretty(a.spec), _pretty(b.spec), f"{name}@{start}", f"{name}@{to}", lineterm=""
        )
        return {"name": name, "from": start, "to": to, "diff": "\n".join(lines)}

    async def stats(self, caller: Caller, name: str, query: dict[str, list[str]]) -> dict[str, Any]:
        """Per version over `from`..`to`: requests, errors, latency, TTFT, tokens, cost."""
        await self._head(caller, name)
        since = parse_time(query["from"][-1], "from") if "from" in query else 0.0
        until = parse_time(query["to"][-1], "to") if "to" in query else time.time() + 86400
        rows = await self.repository.stats(name, since, until)
        data = []
        for (
            version,
            requests,
            errors,
            latency,
            latency_max,
            ttft,
            ttft_n,
            tokens_in,
            tokens_out,
            cost,
        ) in rows:
            # PostgreSQL's SUM of a BIGINT is a NUMERIC: every figure goes through int or float.
            count, timed = int(requests), int(ttft_n or 0)
            data.append(
                {
                    "version": int(version),
                    "requests": count,
                    "errors": int(errors or 0),
                    "latency_ms_mean": float(latency or 0.0) / count if count else None,
                    "latency_ms_max": None if latency_max is None else float(latency_max),
                    "ttft_ms_mean": float(ttft) / timed if timed else None,
                    "input_tokens": int(tokens_in or 0),
                    "output_tokens": int(tokens_out or 0),
                    "cost_usd": float(cost or 0.0),
                }
            )
        return {"name": name, "data": data}

    async def _head(self, caller: Caller, name: str) -> PromptHead:
        head = await self.repository.head(name)
        caller.require_team(head.team_id)
        return head

    async def _owner(self, caller: Caller, team: str | None) -> str | None:
        if team is None:
            return caller.scope
        try:
            team_id = (await self.identity.tenant(TEAM, team)).id
        except NotFound:
            raise Unprocessable(f"No team '{team[:100]}'.", param="team", code="team_not_found") from None
        caller.require_team(team_id)
        return team_id

    async def _check_steps(self, chain: Compiled, team_id: str | None) -> None:
        for step, _, _ in chain.steps:
            try:
                head = await self.repository.head(step.prompt)
            except NotFound:
                raise Unprocessable(
                    f"Step '{step.name}' names no prompt '{step.prompt}'.", param="steps"
                ) from None
            if head.kind != "template":
                raise InvalidRequest(
                    f"Step '{step.name}' names the chain '{step.prompt}'; steps call templates (a chain may not loop).",
                    code="invalid_chain",
                    param="steps",
                )
            if head.team_id is not None and head.team_id != team_id:
                raise Unprocessable(f"Step '{step.name}' names another team's prompt.", param="steps")
        last = chain.steps[-1][0]
        if last.when is not None:
            raise InvalidRequest("The last step answers the call: it takes no 'if'.", param="steps")


def _decode_spec(body: bytes) -> PromptSpec:
    try:
        return _SPEC.decode(body)
    except msgspec.ValidationError as exc:
        raise InvalidRequest(f"Invalid prompt: {str(exc)[:300]}.") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON.", code="invalid_json") from None


def _number(text: str, param: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 1_000_000:
        raise InvalidRequest(f"'{param}' must be a version number.", param=param)
    return int(text)


def _pretty(spec: str) -> list[str]:
    return msgspec.json.format(spec, indent=2).splitlines()


def _head_out(head: PromptHead) -> dict[str, Any]:
    return {
        "name": head.name,
        "kind": head.kind,
        "team_id": head.team_id,
        "latest": head.latest,
        "created_by": head.created_by,
        "created_at": to_datetime(head.created_at),
        "updated_at": to_datetime(head.updated_at),
        "labels": {
            name: {"versions": {str(k): v for k, v in label.versions.items()}, "sticky": label.sticky}
            for name, label in head.labels.items()
        },
    }
