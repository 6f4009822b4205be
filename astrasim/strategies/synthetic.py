"""An analytic profile table: per-op times from FLOP and byte counts on a roofline, no measurement.

For tests and for trying a scenario before anything is profiled. Same columns as a measured
profile (docs/kernels.md, "Ops"), with the profiler's own analytic counts
(astrasim.profiling.costs.op_costs); time = overhead + max(flops / peak, bytes / bandwidth).
"""

from __future__ import annotations

import pandas as pd

from astrasim.models import ModelSpec
from astrasim.profiling.costs import op_costs
from astrasim.strategies.costs import PROFILE_COLUMNS

STRATEGY_NAMES = ("single", "tp", "sp", "bp-ag", "bp-sp", "astra")


def synthetic_profile(specs: list[ModelSpec], *, strategies=STRATEGY_NAMES, devices=(2, 4, 8), tokens=None,
                      groups=(1, 16, 32), codebook: int = 1024, peak_flops: float = 1.568e11,
                      mem_bandwidth_gbs: float = 25.6, overhead_s: float = 2e-5,
                      hardware: str = "synthetic roofline") -> pd.DataFrame:
    """A profile table for `specs` (tokens: list, default each model's default length)."""
    rows = []
    for spec in specs:
        for t in tokens or [spec.tokens]:
            for strategy in strategies:
                for n in ([1] if strategy == "single" else devices):
                    for g in (groups if strategy == "astra" else [0]):
                        k = codebook if strategy == "astra" else 0
                        for op, c in op_costs(spec, strategy, n, t, groups=g, codebook=k).items():
                            s = overhead_s + max(c.flops / peak_flops, c.bytes / (mem_bandwidth_gbs * 1e9))
                            rows.append((spec.name, strategy, n, g, k, t, op, s, s * 0.98, s * 1.05, 1,
                                         float(c.flops), float(c.bytes), hardware, 1, "float32", "none"))
    return pd.DataFrame(rows, columns=list(PROFILE_COLUMNS))
