"""Prometheus label text, escaped once when a series is first seen."""

from __future__ import annotations


def label_text(**labels: str) -> str:
    """`a="x",b="y"` with Prometheus escaping (backslash, quote, newline)."""
    return ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())


def escape(value: str) -> str:
    """A label value with Prometheus escaping."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
