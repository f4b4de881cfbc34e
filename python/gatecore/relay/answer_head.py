"""The head of an inference answer: the headers every relayed answer carries."""

from __future__ import annotations

from gatecore.request import RequestContext

_ONE_ATTEMPT = ("x-gatecore-attempts", "1")


def inference_headers(ctx: RequestContext, content_type: str, overhead_ns: int) -> list[tuple[str, str]]:
    """The answer's head: the request id, gatecore's overhead so far (kept on the context for the
    ledger), the deployment and attempts, limit and timing headers."""
    ctx.overhead_ns = overhead_ns
    headers = [
        ("content-type", content_type),
        ("x-request-id", ctx.request_id),
        ("x-gatecore-overhead-ms", f"{overhead_ns / 1e6:.3f}"),
    ]
    if ctx.deployment is not None:
        attempts = ctx.attempts
        headers.append(("x-gatecore-model", ctx.deployment_id))
        headers.append(_ONE_ATTEMPT if attempts == 1 else ("x-gatecore-attempts", str(attempts)))
        served_by = ctx.deployment.served_by
        if served_by is not None:
            headers.append(("x-gatecore-served-by", served_by))
    if ctx.limits is not None:
        headers += ctx.limits.headers()
    if ctx.cache is not None:
        headers.append(("x-gatecore-cache", ctx.cache.state))
    if ctx.prompt is not None:
        headers.append(("x-gatecore-prompt-version", str(ctx.prompt.version)))
    if ctx.timing is not None:
        headers.append(ctx.timing.header(overhead_ns))
    if ctx.guard is not None and ctx.guard.flagged is not None:
        headers.append(("x-gatecore-guardrail", ctx.guard.flagged))
    if ctx.answer_headers is not None:
        headers += ctx.answer_headers
    return headers
