"""Running a chain: each step but the last is its own request through the step chain (routing,
limits, the upstream call, its own ledger row naming the pipeline request), its answer's text a
variable of later steps; the last step is rendered into the pipeline request itself, so it streams
when the call asked to and its row is the pipeline's.

A step whose condition renders empty, `false`, `0`, `no` or `null` is skipped (its output is empty).
A failed step fails the call with the step's name and its status; the steps before the last run
within the chain's `timeout_s` (504 naming the step past it).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import orjson

from gatecore.errors import GatewayError, InvalidRequest, NotFound
from gatecore.prompts.access import may_call
from gatecore.prompts.call import CallBody, chat_body
from gatecore.prompts.catalog import PromptCatalog
from gatecore.prompts.spec import Compiled, StepSpec
from gatecore.prompts.template import Template, as_text, parsed_json
from gatecore.request import RequestContext
from gatecore.request.prompt_ref import PromptRef

_FALSE = frozenset(("", "false", "0", "no", "null", "none"))


class StepRunner(Protocol):
    """Runs one step's chat body as a request of its own for `parent` (the worker's step chain);
    returns the status and the answer's body."""

    async def __call__(self, parent: RequestContext, body: bytes, ref: PromptRef) -> tuple[int, bytes]: ...


class StepFailed(GatewayError):
    """A chain's step did not answer: the call fails with the step's status and name."""

    code = "step_failed"

    def __init__(self, step: str, status: int, reason: str):
        super().__init__(f"Step '{step}' failed ({status}): {reason[:300]}", param=f"steps.{step}")
        self.status = status
        self.type = "invalid_request_error" if status < 500 else "api_error"


async def run_chain(
    ctx: RequestContext,
    catalog: PromptCatalog,
    runner: StepRunner,
    chain: Compiled,
    values: dict[str, Any],
    call: CallBody,
) -> tuple[Compiled, dict[str, Any], CallBody]:
    """Run the steps before the last; the last step's template, variables and call body."""
    deadline = time.monotonic() + chain.spec.timeout_s
    outputs: dict[str, dict[str, str]] = {}
    last = len(chain.steps) - 1
    for i, (step, templates, condition) in enumerate(chain.steps):
        scope = {"vars": values, "steps": outputs}
        if condition is not None and condition.render(scope).strip().lower() in _FALSE:
            outputs[step.name] = {"output": ""}
            continue
        head = await catalog.head(step.prompt)
        compiled = await catalog.resolve(head, step.label, 0, call.user)
        if compiled.steps:
            raise InvalidRequest(f"Step '{step.name}' names the chain '{step.prompt}'; steps call templates.")
        if not may_call(ctx.key, head, compiled):
            raise NotFound(f"Step '{step.name}': no prompt '{step.prompt}'.", code="prompt_not_found")
        step_values = compiled.variables.check(_typed(compiled, _rendered(templates, scope), step))
        if i == last:
            return compiled, step_values, CallBody(stream=call.stream, user=call.user)
        body = chat_body(compiled, CallBody(user=call.user), {}, step_values)
        ref = PromptRef(step.prompt, step.label, compiled.version, parent=ctx.request_id)
        ref.guardrails = compiled.guardrails
        left = deadline - time.monotonic()
        try:
            if left <= 0:
                raise TimeoutError
            status, answer = await asyncio.wait_for(runner(ctx, body, ref), left)
        except TimeoutError:
            raise StepFailed(step.name, 504, f"the chain's {chain.spec.timeout_s:g} s ran out") from None
        if status >= 400:
            raise StepFailed(step.name, status, _error_message(answer))
        outputs[step.name] = {"output": _answer_text(answer)}
    raise AssertionError("a chain ends with its last step")  # pragma: no cover


def _rendered(templates: dict[str, Template], scope: dict[str, Any]) -> dict[str, str]:
    return {name: template.render(scope) for name, template in templates.items()}


def _typed(compiled: Compiled, texts: dict[str, str], step: StepSpec) -> dict[str, Any]:
    """Rendered texts as the step prompt's variable types (a number or object from a JSON hand-off)."""
    out: dict[str, Any] = {}
    for name, text in texts.items():
        prop = compiled.variables.properties.get(name)
        kind = prop.get("type", "string") if prop else "string"
        out[name] = text if kind == "string" else parsed_json(text)
    return out


def _answer_text(answer: bytes) -> str:
    """The first choice's text of a chat completion (its tool call arguments when it has no text)."""
    try:
        message = orjson.loads(answer)["choices"][0]["message"]
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError):
        return ""
    content = message.get("content")
    if content is None and message.get("tool_calls"):
        return as_text(message["tool_calls"][0].get("function", {}).get("arguments"))
    return as_text(content)


def _error_message(answer: bytes) -> str:
    try:
        return str(orjson.loads(answer)["error"]["message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return "no answer"
