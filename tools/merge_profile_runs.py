"""Merge repeated `astrasim profile` runs of the same keys into one profile: per key (model,
strategy, devices, the profiled knobs, tokens, op) the row of the run with the lowest `median_s`. On a machine
shared with other work preemption only ever adds time, so the lowest estimate over runs is the
op's own time (profiles/cpu.decode.csv: several `--decode --threads 1 --statistic p10` runs).

    python tools/merge_profile_runs.py --out profiles/cpu.decode.csv run1.csv run2.csv ...
"""

from __future__ import annotations

import argparse

import pandas as pd

from astrasim.compute.profiles import read_profile_table
from astrasim.strategies.registry import PROFILED_KNOBS

KEY = ["model", "strategy", "devices", *PROFILED_KNOBS, "tokens", "op"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    runs = pd.concat([read_profile_table(f, knobs=PROFILED_KNOBS) for f in a.runs], ignore_index=True)
    best = runs.loc[runs.groupby(KEY)["median_s"].idxmin()].copy()
    best["repeats"] = runs.groupby(KEY)["repeats"].sum().reindex(pd.MultiIndex.from_frame(best[KEY])).values
    best.sort_values(KEY).to_csv(a.out, index=False)
    print(f"wrote {len(best)} rows to {a.out} from {len(runs)} over {len(a.runs)} runs")


if __name__ == "__main__":
    main()
