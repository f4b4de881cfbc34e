"""`pipeline:`: stages from other installed packages, placed in the chain (pipeline/plugins.py)."""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

import msgspec

# The entry-point group a package declares its stages in (`[project.entry-points."gatecore.stages"]`).
STAGE_GROUP = "gatecore.stages"


class StagePlacement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One stage from an installed package: which (`use`: its entry point's name), where (`before` or
    `after` a stage of the chain, by name) and its own settings (`options`, given to its factory)."""

    use: str
    before: str | None = None
    after: str | None = None
    # Its name in the chain: the label of its mark (x-gatecore-timing, the stage histogram, spans)
    # and what later placements refer to. Default: `use`.
    name: str | None = None
    options: dict[str, Any] = msgspec.field(default_factory=dict)

    @property
    def stage_name(self) -> str:
        return self.name or self.use


class PipelineConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    stages: list[StagePlacement] = msgspec.field(default_factory=list)


def installed_stages() -> set[str]:
    """The names of the stages installed packages offer."""
    return {ep.name for ep in entry_points(group=STAGE_GROUP)}


def validate_pipeline(pipeline: PipelineConfig) -> list[str]:
    """Every error in `pipeline:` that can be told without building the chain, as `path: reason`."""
    errors: list[str] = []
    installed = installed_stages() if pipeline.stages else set()
    names: set[str] = set()
    for i, placement in enumerate(pipeline.stages):
        path = f"pipeline.stages[{i}]"
        if (placement.before is None) == (placement.after is None):
            errors.append(f"{path}: give exactly one of 'before' and 'after' (a stage of the chain)")
        if placement.use not in installed:
            found = ", ".join(sorted(installed)) or "none"
            errors.append(f"{path}.use: no installed stage '{placement.use[:100]}' (installed: {found})")
        if placement.stage_name in names:
            errors.append(f"{path}.name: a stage named '{placement.stage_name[:100]}' is placed twice")
        names.add(placement.stage_name)
    return errors
