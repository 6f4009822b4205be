"""Estimate the rows of one op from the measured rows of another op of the same configurations,
in proportion to their analytic FLOPs: for when the op cannot be measured well (a machine too
busy to time anything; docs/kernels.md "Noise") and a quiet measurement of a similar op exists.

    python -m astrasim.profiling.derive profiles/cpu.csv --source-op decoupled_layer_sliced \\
        --op decoupled_layer --out profiles/cpu.decoupled-scaled.csv

Each estimated row copies the source row's key, hardware and metadata, takes its flops and bytes
from the strategy's op_costs, and median / p10 / p90 = the source's x flops_op / flops_source.
Its `clock` column says `scaled:<source op>`, so an estimate is never mistaken for a measurement;
re-measure with `astrasim profile --ops <op> --out <same file>` on a quiet machine to replace it.
"""

from __future__ import annotations

import argparse

import pandas as pd

from astrasim.compute.profiles import PROFILE_NOISE_COLUMNS, profile_columns
from astrasim.models import get_model
from astrasim.strategies import STRATEGIES, registry


def scaled_rows(table: pd.DataFrame, source_op: str, op: str, spec_of=get_model) -> pd.DataFrame:
    """Rows for `op` estimated from every row of `source_op` whose strategy also has `op`
    (`spec_of`: model name -> ModelSpec, for custom models)."""
    columns = profile_columns(registry.PROFILED_KNOBS)
    rows = []
    for _, src in table[table["op"] == source_op].iterrows():
        strategy = STRATEGIES[src["strategy"]]
        if op not in strategy.ops:
            continue
        knobs = strategy.profile_knobs(src)
        cost = strategy.op_costs(spec_of(src["model"]), int(src["devices"]), int(src["tokens"]), knobs)[op]
        ratio = cost.flops / float(src["flops"])
        row = {c: src.get(c, 0) for c in columns}
        row.update(
            op=op,
            flops=cost.flops,
            bytes=cost.bytes,
            median_s=src["median_s"] * ratio,
            p10_s=src["p10_s"] * ratio,
            p90_s=src["p90_s"] * ratio,
        )
        row.update({c: src.get(c) for c in PROFILE_NOISE_COLUMNS if c in src.index}, clock=f"scaled:{source_op}")
        rows.append(row)
    return pd.DataFrame(rows, columns=[*columns, *PROFILE_NOISE_COLUMNS])


def main(argv: list[str] | None = None) -> None:
    from astrasim.profiling.profiler import read_profile, write_profile

    ap = argparse.ArgumentParser(description="Estimate one op's profile rows from another's, by their FLOP ratio.")
    ap.add_argument("profile")
    ap.add_argument("--source-op", required=True)
    ap.add_argument("--op", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    out = scaled_rows(read_profile(args.profile), args.source_op, args.op)
    write_profile(out, args.out)
    print(f"wrote {len(out)} estimated rows to {args.out}")


if __name__ == "__main__":
    main()
