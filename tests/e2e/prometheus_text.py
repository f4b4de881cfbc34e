"""A small parser of the Prometheus text exposition format (0.0.4), enough to check /metrics."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)')


@dataclass
class Exposition:
    """Samples as (name, frozenset of label pairs) → value, and each family's TYPE."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = field(default_factory=dict)
    types: dict[str, str] = field(default_factory=dict)

    def value(self, name: str, **labels: str) -> float:
        """The sample with exactly these labels (0 when absent, like an untouched counter)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def total(self, name: str, **labels: str) -> float:
        """The sum over every sample of `name` whose labels include these."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def label_values(self, label: str) -> set[str]:
        return {v for (_, ls) in self.samples for k, v in ls if k == label}


def parse(text: str) -> Exposition:
    """Parse the exposition; raises AssertionError on a line that is not valid."""
    out = Exposition()
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            out.types[name] = kind
            continue
        if line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        assert match is not None, f"not a sample line: {line!r}"
        name, label_text, value = match.groups()
        labels: list[tuple[str, str]] = []
        rest = label_text or ""
        while rest:
            label = _LABEL.match(rest)
            assert label is not None, f"bad labels in {line!r}"
            labels.append((label.group(1), label.group(2).replace('\\"', '"').replace("\\\\", "\\")))
            rest = rest[label.end() :]
        key = (name, frozenset(labels))
        assert key not in out.samples, f"duplicate series {line!r}"
        out.samples[key] = float(value)
    return out
