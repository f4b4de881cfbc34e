"""Who may call: organizations → teams → users → API keys, kept in the store and compiled into an
in-memory snapshot that the request path reads."""
