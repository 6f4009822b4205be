"""The shipped profiles against their device catalog entries: no op may run faster than its
hardware's peak (roofline scaling divides by the peak, so an op above 100 % of it would credit
every scaled device with more than its own peak), and the profile covers what the docs promise."""

from pathlib import Path

import pytest

from astrasim.compute.catalog import load_catalog
from astrasim.compute.profiles import ProfileCosts, profile_files
from astrasim.models import get_model
from astrasim.profiling.profiler import read_profile
from astrasim.strategies import STRATEGIES

ROOT = Path(__file__).resolve().parents[1]
PROFILES = sorted(p for p in (ROOT / "profiles").glob("*.csv") if "." not in p.stem and p.stem in load_catalog())


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_no_op_runs_above_its_devices_peak(profile):
    device = load_catalog()[profile.stem]
    for f in profile_files(profile):
        df = read_profile(f)
        rate = df["flops"] / df["median_s"]
        traffic = df["bytes"] / df["median_s"] / 1e9
        worst = df.loc[rate.idxmax()]
        assert rate.max() <= device.peak_flops, (
            f.name,
            worst["model"],
            worst["strategy"],
            worst["op"],
            rate.max() / device.peak_flops,
        )
        assert traffic.max() <= device.mem_bandwidth_gbs, (f.name, traffic.max())


def test_cpu_profile_rows_match_the_analytic_costs_and_have_both_decoupled_shapes():
    """Every shipped row's flops and bytes are what its strategy's op_costs say for that op today
    (a row measured for another shape, or a relabelled one, would not match)."""
    import pandas as pd

    df = pd.concat([read_profile(f) for f in profile_files(ROOT / "profiles" / "cpu.csv")], ignore_index=True)
    for (model, name, n, g, k, t), rows in df.groupby(["model", "strategy", "devices", "groups", "codebook", "tokens"]):
        s = STRATEGIES[name]
        knobs = s.profile_knobs({"groups": g, "codebook": k})
        decode_ops, ops = set(getattr(s, "decode_ops", ())), set(rows["op"])
        costs = s.op_costs(get_model(model), int(n), int(t), knobs) if ops - decode_ops else {}
        if ops & decode_ops:  # decode rows: `tokens` is the cache length
            costs.update(s.decode_op_costs(get_model(model), int(n), int(t), knobs))
        for _, row in rows.iterrows():
            if row["op"] not in costs:
                continue  # a decode op of a strategy whose decode reuses another strategy's rows
            assert row["flops"] == pytest.approx(costs[row["op"]].flops), (model, name, n, g, row["op"])
            assert row["bytes"] == pytest.approx(costs[row["op"]].bytes), (model, name, n, g, row["op"])
    costs = ProfileCosts(df)
    for model in ("vit-base", "gpt2-s", "gpt2-m"):
        for n in (1, 2, 4, 8):
            for name in ("bp-ag", "bp-sp"):
                assert costs.has(model, name, n, "decoupled_layer") and costs.has(
                    model, name, n, "decoupled_layer_sliced"
                )
