"""Relaying an upstream response to the client: whole bodies and SSE streams."""
