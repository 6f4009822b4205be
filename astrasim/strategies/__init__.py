"""Strategies: each one object in one module, registered once (astrasim.strategies.registry).

`build_graph` turns (strategy, model spec, per-op costs, N, tokens, knobs, options) into a
validated OpGraph. Each strategy module's docstring states its per-layer ops and messages
(docs/strategies.md).
"""

from __future__ import annotations

from typing import Any

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies.base import BuildOptions, Costs, Knobs, Strategy
from astrasim.strategies.registry import KNOB_FIELDS, STRATEGIES, get, label_of, parse_label

__all__ = ["STRATEGIES", "KNOB_FIELDS", "BuildOptions", "Knobs", "Strategy", "build_graph", "get", "label_of",
           "parse_label"]


def build_graph(strategy: str | Strategy, spec: ModelSpec, costs: Costs, n_devices: int, tokens: int,
                knobs: Knobs | dict[str, Any] | None = None, options: BuildOptions | None = None) -> OpGraph:
    """Build and validate the per-device op graph of one strategy point."""
    s = strategy if isinstance(strategy, Strategy) else get(strategy)
    if not isinstance(knobs, Knobs):
        knobs = s.knobs(**(knobs or {}))
    opts = options or BuildOptions()
    opts.check()
    s.check(spec, n_devices, tokens, knobs)
    graph = s.build(spec, costs, 1 if s.single_device else n_devices, tokens, knobs, opts)
    graph.validate()
    return graph
