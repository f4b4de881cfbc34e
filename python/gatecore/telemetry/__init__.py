"""Operators' view of the gateway: Prometheus metrics aggregated across workers."""
