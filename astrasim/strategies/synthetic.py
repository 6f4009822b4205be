"""An analytic profile table: per-op times from FLOP and byte counts on a roofline, no measurement.

For tests and for trying a scenario before anything is profiled. Same columns as a measured
profile , with the profiler's own analytic counts
(each strategy's op_costs); time = overhead + max(flops / peak, bytes / bandwidth).
"""

from __future__ import annotations

import pandas as pd

from astrasim.models import ModelSpec
from astrasim.compute.profiles import PROFILE_COLUMNS
from astrasim.strategies.registry import STRATEGIES

STRATEGY_NAMES = tuple(STRATEGIES)


def synthetic_profile(specs: list[ModelSpec], *, strategies=STRATEGY_NAMES, devices=(2, 4, 8), tokens=None,
                      groups=(1, 16, 32), codebook: int | None = None, peak_flops: float = 1.568e11,
                      mem_bandwidth_gbs: float = 25.6, overhead_s: float = 2e-5,
                      hardware: str = "synthetic roofline", decode_cache=(1, 512, 1024)) -> pd.DataFrame:
    """A profile table for `specs` (tokens: list, default each model's default length); `groups`
    and `codebook` fill the profiled knobs of the strategies that have them (default K: the
    strategy's own). Causal models also get decode-step rows at the cache lengths `decode_cache`
    (the `tokens` column holds the cache length)."""
    rows = []
    for spec in specs:
        phases = [(t, False) for t in tokens or [spec.tokens]]
        phases += [(c, True) for c in (decode_cache if spec.causal else ())]
        for t, decode in phases:
            for name in strategies:
                strategy = STRATEGIES[name]
                if not (strategy.decode_ops if decode else strategy.ops) or not strategy.applies(spec):
                    continue
                lists = {}
                if "groups" in strategy.profiled_knobs:
                    lists["groups"] = list(groups)
                if "codebook" in strategy.profiled_knobs and codebook is not None:
                    lists["codebook"] = [codebook]
                for n in ([1] if strategy.single_device else devices):
                    for knobs in strategy.variants(lists):
                        g, k = strategy.profile_key(knobs)
                        op_costs = strategy.decode_op_costs if decode else strategy.op_costs
                        for op, c in op_costs(spec, n, t, knobs).items():
                            s = overhead_s + max(c.flops / peak_flops, c.bytes / (mem_bandwidth_gbs * 1e9))
                            rows.append((spec.name, name, n, g, k, t, op, s, s * 0.98, s * 1.05, 1,
                                         float(c.flops), float(c.bytes), hardware, 1, "float32", "none"))
    return pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
