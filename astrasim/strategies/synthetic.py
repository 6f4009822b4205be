"""An analytic profile table: per-op times from FLOP and byte counts on a roofline, no measurement.

For tests and for trying a scenario before anything is profiled. Same columns as a measured
profile , with the profiler's own analytic counts
(each strategy's op_costs); time = overhead + max(flops / peak, bytes / bandwidth).
"""

from __future__ import annotations

import pandas as pd

from astrasim.compute.profiles import profile_columns
from astrasim.models import ModelSpec
from astrasim.strategies import registry
from astrasim.strategies.registry import STRATEGIES

STRATEGY_NAMES = tuple(STRATEGIES)


def synthetic_profile(
    specs: list[ModelSpec],
    *,
    strategies=STRATEGY_NAMES,
    devices=(2, 4, 8),
    tokens=None,
    groups=None,
    codebook: int | None = None,
    knobs: dict[str, list] | None = None,
    peak_flops: float = 1.568e11,
    mem_bandwidth_gbs: float = 25.6,
    overhead_s: float = 2e-5,
    hardware: str = "synthetic roofline",
    decode_cache=(1, 512, 1024),
) -> pd.DataFrame:
    """A profile table for `specs` (tokens: list, default each model's default length); `knobs`
    (profiled knob -> values) fills the profiled knobs of the strategies that have them (a knob left
    out: the strategy's profile_values, else its default); `groups` and `codebook` are shorthands
    for knobs["groups"], knobs["codebook"].
    Causal models also get decode-step rows at the cache lengths `decode_cache` (the `tokens` column
    holds the cache length). Key columns: every profiled knob of the registry."""
    lists = {
        **({"groups": list(groups)} if groups is not None else {}),
        **({"codebook": [codebook]} if codebook is not None else {}),
        **(knobs or {}),
    }
    columns = profile_columns(registry.PROFILED_KNOBS)
    rows = []
    for spec in specs:
        phases = [(t, False) for t in tokens or [spec.tokens]]
        phases += [(c, True) for c in (decode_cache if spec.causal else ())]
        for t, decode in phases:
            for name in strategies:
                strategy = STRATEGIES[name]
                if not (strategy.decode_ops if decode else strategy.ops) or not strategy.applies(spec):
                    continue
                own = strategy.profile_lists(lists)
                for n in [1] if strategy.single_device else devices:
                    for variant in strategy.variants(own):
                        key = dict.fromkeys(registry.PROFILED_KNOBS, 0) | dict(strategy.profile_key(variant))
                        op_costs = strategy.decode_op_costs if decode else strategy.op_costs
                        for op, c in op_costs(spec, n, t, variant).items():
                            s = overhead_s + max(c.flops / peak_flops, c.bytes / (mem_bandwidth_gbs * 1e9))
                            rows.append(
                                dict(
                                    key,
                                    model=spec.name,
                                    strategy=name,
                                    devices=n,
                                    tokens=t,
                                    op=op,
                                    median_s=s,
                                    p10_s=s * 0.98,
                                    p90_s=s * 1.05,
                                    repeats=1,
                                    flops=float(c.flops),
                                    bytes=float(c.bytes),
                                    hardware=hardware,
                                    threads=1,
                                    dtype="float32",
                                    torch_version="none",
                                )
                            )
    return pd.DataFrame(rows, columns=list(columns))
