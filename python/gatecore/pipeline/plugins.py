"""Stages shipped by other installed packages, placed in the chain by config (`pipeline.stages`).

A package declares a factory in the entry-point group `gatecore.stages`:

    [project.entry-points."gatecore.stages"]
    header_guard = "my_package.guard:build"

`build(options: dict) -> stage` gets the placement's `options` and returns a stage with the built-in
stages' interface: `async def __call__(ctx: RequestContext) -> None`, raising a `GatewayError` (from
`gatecore.errors`) to answer the client itself, in the route's API shape like any built-in stage's
refusal. Placed stages are timed under their name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from gatecore.config.load import ConfigError
from gatecore.config.pipeline import STAGE_GROUP, PipelineConfig
from gatecore.pipeline.chain import ChainParts, Link, Stage


def placed_links(links: tuple[Link, ...], pipeline: PipelineConfig) -> tuple[Link, ...]:
    """`links` with the configured stages placed among them, in the order of the config's list (a
    later placement may name an earlier one). Raises ConfigError for a stage that is not installed or
    a place that is not in the chain."""
    if not pipeline.stages:
        return links
    factories = {ep.name: ep for ep in entry_points(group=STAGE_GROUP)}
    placed = list(links)
    errors: list[str] = []
    for i, placement in enumerate(pipeline.stages):
        path = f"pipeline.stages[{i}]"
        entry = factories.get(placement.use)
        if entry is None:
            errors.append(f"{path}.use: no installed stage '{placement.use[:100]}'")
            continue
        target = placement.before if placement.before is not None else placement.after
        at = next((j for j, link in enumerate(placed) if link.name == target), None)
        if at is None:
            known = ", ".join(link.name for link in placed)
            errors.append(f"{path}: no stage '{str(target)[:100]}' in the chain (it has: {known})")
            continue
        factory: Callable[[dict[str, Any]], Stage] = entry.load()
        try:
            stage = factory(dict(placement.options))
        except Exception as exc:  # the package's own check of its options
            errors.append(f"{path}.options: {str(exc)[:300]}")
            continue
        link = Link(placement.stage_name, _built(stage))
        placed.insert(at if placement.before is not None else at + 1, link)
    if errors:
        raise ConfigError(errors)
    return tuple(placed)


def _built(stage: Stage) -> Callable[[ChainParts], Stage]:
    # One stage object serves every chain of the worker, as the built-in shared stages do.
    return lambda parts: stage
