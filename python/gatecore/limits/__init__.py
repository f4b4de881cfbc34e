"""Rate limits and budgets: admission before the upstream call, settle after (see docs/ARCHITECTURE.md)."""
