"""End-to-end tests: the real gatecore server over HTTP, driven by the official SDKs."""
