"""A prompt version as published (`POST /admin/v1/prompts`) and as compiled to serve.

A version is either a template (`model` + `messages`) or a chain (`steps`, each naming a template
prompt). Everything is checked here at publish time: the templates parse and render with sample
variables, every placeholder names a declared variable, the parameters are known ones, a chain's
steps refer only to earlier steps and to template prompts (so a chain cannot loop), within bounds.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from gatecore.errors import InvalidRequest
from gatecore.prompts.template import Template
from gatecore.prompts.variables import Variables

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$"
NAME = re.compile(NAME_PATTERN)
MAX_MESSAGES = 64
MAX_STEPS = 8
MAX_CHAIN_S = 300.0
# Chat parameters a template may set, and a call may override when the template lists them.
PARAMS = frozenset(
    (
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "response_format",
        "tools",
        "tool_choice",
        "stop",
        "seed",
        "presence_penalty",
        "frequency_penalty",
        "reasoning_effort",
    )
)
Name = Annotated[str, Meta(pattern=NAME_PATTERN)]
Text = Annotated[str, Meta(max_length=100_000)]


class MessageSpec(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: Text


class StepSpec(msgspec.Struct, forbid_unknown_fields=True, rename={"when": "if"}):
    """One step of a chain: a template prompt, its variables as templates over `vars.*` and
    `steps.<earlier>.output[.field]`, and an optional condition (`if`: skipped when it renders
    empty, `false`, `0`, `no` or `null`)."""

    name: Annotated[str, Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
    prompt: Name
    variables: Annotated[dict[str, Text], Meta(max_length=64)] = {}
    label: Annotated[str, Meta(min_length=1, max_length=100)] | None = None
    when: Annotated[str, Meta(max_length=2000)] | None = None


class PromptSpec(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`POST /admin/v1/prompts` and `POST /admin/v1/prompts/{name}/versions`."""

    name: Name | None = None
    description: Annotated[str, Meta(max_length=2000)] | None = None
    model: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    messages: Annotated[list[MessageSpec], Meta(max_length=MAX_MESSAGES)] | None = None
    variables: dict[str, Any] | None = None
    params: dict[str, Any] | None = None
    overridable: list[str] = []
    keys: (
        Annotated[list[Annotated[str, Meta(min_length=1, max_length=200)]], Meta(max_length=1000)] | None
    ) = None
    team: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    guardrail: Annotated[str, Meta(max_length=200)] | None = None
    steps: Annotated[list[StepSpec], Meta(min_length=1, max_length=MAX_STEPS)] | None = None
    timeout_s: Annotated[float, Meta(gt=0, le=MAX_CHAIN_S)] = 60.0


class Compiled:
    """A version ready to serve: its templates parsed, its variables' schema checked."""

    @property
    def guardrails(self) -> tuple[str, ...]:
        """The guardrail this version names, for the guard stage (`PromptRef.guardrails`)."""
        return (self.spec.guardrail,) if self.spec.guardrail else ()

    __slots__ = ("encoded", "head", "messages", "spec", "steps", "variables", "version")

    def __init__(self, spec: PromptSpec, version: int):
        self.spec = spec
        self.version = version
        self.variables = Variables(spec.variables)
        self.messages: tuple[tuple[str, Template], ...] = ()
        # The chat body's bytes known at publish time: its parameters and model (`head`, an object
        # left open), and each message, pre-encoded when it has no placeholder (`encoded`).
        self.head = b""
        self.encoded: tuple[bytes | tuple[bytes, Template], ...] = ()
        self.steps: tuple[tuple[StepSpec, dict[str, Template], Template | None], ...] = ()
        if spec.steps is not None:
            self._compile_steps(spec.steps)
        else:
            self._compile_messages()

    def _compile_messages(self) -> None:
        spec = self.spec
        if not spec.model or not spec.messages:
            raise InvalidRequest(
                "A prompt needs 'model' and 'messages' (or 'steps' for a chain).", param="messages"
            )
        declared = set(self.variables.properties)
        compiled = []
        for i, message in enumerate(spec.messages):
            template = Template(message.content, f"messages[{i}].content")
            for path in template.paths:
                if path[0] not in declared:
                    raise InvalidRequest(
                        f"messages[{i}].content uses '{{{{ {'.'.join(path)} }}}}', which is not a declared "
                        "variable (add it to 'variables.properties').",
                        code="invalid_template",
                        param=f"messages[{i}].content",
                    )
            compiled.append((message.role, template))
        self.messages = tuple(compiled)
        params = spec.params or {}
        unknown = sorted((set(params) | set(spec.overridable)) - PARAMS)
        if unknown:
            raise InvalidRequest(
                f"Unknown parameter '{unknown[0][:40]}'; a prompt may set {', '.join(sorted(PARAMS))}.",
                param="params",
            )
        self.render(self.variables.sample())  # a template that does not render fails now
        self.head = _ENCODE({**params, "model": spec.model})[:-1]
        self.encoded = tuple(
            _ENCODE({"role": role, "content": template.render({})})
            if not template.paths
            else (b'{"role":' + _ENCODE(role) + b',"content":', template)
            for role, template in self.messages
        )

    def _compile_steps(self, steps: list[StepSpec]) -> None:
        spec = self.spec
        if spec.model is not None or spec.messages is not None or spec.params:
            raise InvalidRequest(
                "A chain has 'steps' instead of 'model', 'messages' and 'params'.", param="steps"
            )
        declared = set(self.variables.properties)
        seen: list[str] = []
        compiled = []
        for i, step in enumerate(steps):
            if step.name in seen:
                raise InvalidRequest(f"Two steps are named '{step.name}'.", param=f"steps[{i}].name")
            if spec.name is not None and step.prompt == spec.name:
                raise InvalidRequest(
                    "A chain's step cannot call the chain itself.", param=f"steps[{i}].prompt"
                )
            templates = {
                name: Template(text, f"steps[{i}].variables.{name}") for name, text in step.variables.items()
            }
            condition = Template(step.when, f"steps[{i}].if") if step.when is not None else None
            for template in [*templates.values(), *([condition] if condition else [])]:
                for path in template.paths:
                    _check_step_path(i, path, declared, seen)
            compiled.append((step, templates, condition))
            seen.append(step.name)
        self.steps = tuple(compiled)

    def encode_messages(self, values: dict[str, Any]) -> bytes:
        """The rendered messages as the members of a JSON array (what `render` gives, encoded)."""
        parts: list[bytes] = []
        for part in self.encoded:
            if isinstance(part, bytes):
                parts.append(part)
            else:
                start, template = part
                parts.append(start + _ENCODE(template.render(values)) + b"}")
        return b",".join(parts)

    def render(self, values: dict[str, Any]) -> list[dict[str, str]]:
        """The chat messages for checked `values`: each content rendered as text."""
        return [{"role": role, "content": template.render(values)} for role, template in self.messages]


def _check_step_path(i: int, path: tuple[str, ...], declared: set[str], earlier: list[str]) -> None:
    where = f"steps[{i}]"
    if path[0] == "vars" and len(path) >= 2 and path[1] in declared:
        return
    if path[0] == "steps" and len(path) >= 3 and path[2] == "output":
        if path[1] in earlier:
            return
        raise InvalidRequest(
            f"{where} uses the output of '{path[1]}', which is not an earlier step (a chain may not loop).",
            code="invalid_chain",
            param=where,
        )
    raise InvalidRequest(
        f"{where} uses '{{{{ {'.'.join(path)} }}}}'; a step's variables may use '{{{{ vars.<declared variable> }}}}' "
        "and '{{ steps.<earlier step>.output }}'.",
        code="invalid_template",
        param=where,
    )


_ENCODE = msgspec.json.encode
SPEC_DECODER = msgspec.json.Decoder(PromptSpec)
SPEC_ENCODER = msgspec.json.Encoder()


def decode_spec(text: str | bytes) -> PromptSpec:
    """A stored spec (it was checked when published)."""
    return SPEC_DECODER.decode(text)
