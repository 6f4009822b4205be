"""Strategies: builders that turn (model spec, per-op costs, N, tokens, options) into an OpGraph.

Registry `STRATEGIES` maps names to builders; `build_graph` validates the result. One module per
strategy; each module docstring states its per-layer ops and messages (docs/strategies.md).
"""

from __future__ import annotations

from astrasim.models import ModelSpec
from astrasim.opgraph import OpGraph
from astrasim.strategies import astra, bp_ag, bp_sp, single, sp, tp
from astrasim.strategies.base import BuilderFn, Costs, StrategyOptions

STRATEGIES: dict[str, BuilderFn] = {
    "single": single.build,
    "tp": tp.build,
    "sp": sp.build,
    "bp-ag": bp_ag.build,
    "bp-sp": bp_sp.build,
    "astra": astra.build,
}

__all__ = ["STRATEGIES", "StrategyOptions", "build_graph", "strategy_label"]


def strategy_label(strategy: str, groups: int = 0, codebook: int = 1024, nb: int = 0) -> str:
    """Short name of a strategy variant: 'astra G=16', 'bp-ag Nb=4', 'tp' (K shown when not 1024)."""
    if strategy == "astra":
        return f"astra G={int(groups)}" + (f" K={int(codebook)}" if int(codebook) != 1024 else "")
    if strategy in ("bp-ag", "bp-sp"):
        return f"{strategy} Nb={int(nb)}"
    return strategy


def build_graph(strategy: str, spec: ModelSpec, costs: Costs, n_devices: int, tokens: int,
                options: StrategyOptions | None = None) -> OpGraph:
    """Build and validate the per-device op graph of one strategy point."""
    try:
        builder = STRATEGIES[strategy]
    except KeyError:
        raise ValueError(f"unknown strategy {strategy!r}; use one of {', '.join(STRATEGIES)}") from None
    opts = options or StrategyOptions()
    opts.check()
    graph = builder(spec, costs, n_devices, tokens, opts)
    graph.validate()
    return graph
