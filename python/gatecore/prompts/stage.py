"""The published route's decode stage: `POST /v1/prompts/{name}` → a hub chat body.

It resolves the prompt and version (the server put the name and query on `ctx.prompt`), checks the
caller may use it, checks the variables, renders the messages and leaves the chat body in `ctx.body`
for the chat route's own decoder, so every stage after it (augmentation, routing, limits, the
upstream call, the ledger, the metrics) serves it like any chat request. A chain's earlier steps run
here, each as its own request through the step chain; its last step is this request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from gatecore.errors import InvalidRequest, NotFound, StoreUnavailable
from gatecore.prompts.access import may_call
from gatecore.prompts.call import CallBody, chat_body, decode_call
from gatecore.prompts.catalog import PromptCatalog
from gatecore.prompts.chain_run import StepRunner, run_chain
from gatecore.prompts.repository import PromptHead
from gatecore.prompts.spec import Compiled
from gatecore.request import RequestContext
from gatecore.request.prompt_ref import PromptRef


class PromptStage:
    """Decode for the published route (see the module's docstring)."""

    __slots__ = ("catalog", "decode", "steps")

    def __init__(
        self,
        catalog: PromptCatalog | None,
        decode: Callable[[RequestContext], None],
        steps: StepRunner | None,
    ):
        self.catalog = catalog  # set once the store is open
        self.decode = decode  # the chat route's decode stage, for the rendered body
        self.steps = steps

    def __call__(self, ctx: RequestContext) -> Awaitable[None] | None:
        ref = ctx.prompt
        assert ref is not None  # the server sets it for this route
        catalog = self.catalog
        if catalog is None:
            raise StoreUnavailable("Prompts are unavailable: the store could not be opened.")
        call, overrides = decode_call(ctx.body)
        # Most calls find the head and the version in this worker's cache: no await at all.
        head = catalog.cached_head(ref.name)
        if head is not None:
            compiled = catalog.cached_version(
                head, ref.label, ref.version, self._sticky(ctx, head, ref.label, call)
            )
            if compiled is not None and not compiled.steps:
                self._finish(ctx, head, compiled, call, overrides)
                return None
        return self.render(ctx, catalog, call, overrides)

    async def render(
        self, ctx: RequestContext, catalog: PromptCatalog, call: CallBody, overrides: dict[str, Any]
    ) -> None:
        """Resolve `ctx.prompt`, render the call into a chat body in `ctx.body`, decode that."""
        ref = ctx.prompt
        assert ref is not None
        head = await catalog.head(ref.name)
        sticky = self._sticky(ctx, head, ref.label, call)
        compiled = await catalog.resolve(head, ref.label, ref.version, sticky)
        if not compiled.steps:
            self._finish(ctx, head, compiled, call, overrides)
            return
        values = self._checked(ctx, head, compiled, call)
        if self.steps is None:
            raise NotFound("Chains are not served here.", code="prompt_not_found")
        chain_guardrails = compiled.guardrails
        compiled, values, call = await run_chain(ctx, catalog, self.steps, compiled, values, call)
        ref.guardrails = tuple(dict.fromkeys(chain_guardrails + compiled.guardrails))
        ctx.body = chat_body(compiled, call, {}, values)
        self.decode(ctx)

    async def rendered(
        self, ctx: RequestContext, ref: PromptRef, variables: dict[str, Any] | None, user: str | None = None
    ) -> tuple[Compiled, list[dict[str, str]]]:
        """A stored template's messages rendered for another API (the Responses API's `prompt`): the
        version `ref` names (a split label's pick sticky per `user` or header, as on a published call),
        checked like a published call (the caller may use it, the variables), and `ctx.prompt` set so
        the ledger, metrics and guardrails see it."""
        catalog = self.catalog
        if catalog is None:
            raise StoreUnavailable("Prompts are unavailable: the store could not be opened.")
        head = await catalog.head(ref.name)
        call = CallBody(variables=variables, user=user[:256] if user is not None else None)
        compiled = await catalog.resolve(
            head, ref.label, ref.version, self._sticky(ctx, head, ref.label, call)
        )
        ctx.prompt = ref
        values = self._checked(ctx, head, compiled, call)
        if compiled.steps:
            raise InvalidRequest(
                f"'{ref.name[:100]}' is a chain; call it at POST /v1/prompts/{{name}}.", param="prompt.id"
            )
        ref.guardrails = compiled.guardrails
        return compiled, compiled.render(values)

    def _finish(
        self,
        ctx: RequestContext,
        head: PromptHead,
        compiled: Compiled,
        call: CallBody,
        overrides: dict[str, Any],
    ) -> None:
        values = self._checked(ctx, head, compiled, call)
        assert ctx.prompt is not None
        ctx.prompt.guardrails = compiled.guardrails
        ctx.body = chat_body(compiled, call, overrides, values)
        self.decode(ctx)

    def _checked(
        self, ctx: RequestContext, head: PromptHead, compiled: Compiled, call: CallBody
    ) -> dict[str, Any]:
        """The caller may use the version (404 as if it did not exist otherwise); its variables."""
        ref = ctx.prompt
        assert ref is not None
        if not may_call(ctx.key, head, compiled):
            # Not told apart from a prompt that does not exist: another team's names stay unknown.
            raise NotFound(f"No prompt '{ref.name[:100]}'.", code="prompt_not_found")
        ref.version = compiled.version
        return compiled.variables.check(call.variables)

    def _sticky(self, ctx: RequestContext, head: PromptHead, label: str | None, call: CallBody) -> str | None:
        found = head.labels.get(label or "production")
        if found is None or found.sticky is None or len(found.versions) < 2:
            return None
        if found.sticky == "user":
            return call.user
        header: Any = ctx.headers.get(found.sticky.removeprefix("header:"))
        return str(header)[:256] if header else None
