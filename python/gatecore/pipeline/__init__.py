"""The chain: the one list that owns the order of an inference request's stages (chain.py), the
decode, body and upstream-call stages that are the chain's own, retries and fallbacks, and the
record at the end. No stage imports this package."""
