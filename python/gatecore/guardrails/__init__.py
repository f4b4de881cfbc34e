"""Guardrails (issue 20): PII detection and rewriting, prompt-injection scoring, webhook and plugin
guards, on the request's texts (the `guard_input` stage) and on the answer (the relays call
`ctx.guard`, an `AnswerGuard`). See docs/ARCHITECTURE.md, "Guardrails"."""
