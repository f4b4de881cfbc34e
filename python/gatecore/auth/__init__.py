"""Who may call what: the auth stage, which attaches a compiled key policy (gatecore.policy) to requests."""
