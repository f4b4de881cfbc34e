"""Loopback upstream servers that speak each provider's wire format, for tests and benches."""
