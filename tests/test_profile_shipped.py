"""The shipped profiles against their device catalog entries: no op may run faster than its
hardware's peak (roofline scaling divides by the peak, so an op above 100 % of it would credit
every scaled device with more than its own peak), and the profile covers what the docs promise."""

from pathlib import Path

import pytest

from astrasim.models import get_model
from astrasim.profiling.profiler import read_profile
from astrasim.strategies import STRATEGIES
from astrasim.strategies.costs import ProfileCosts, load_catalog, profile_files

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
        assert rate.max() <= device.peak_flops, (f.name, worst["model"], worst["strategy"], worst["op"],
                                                 rate.max() / device.peak_flops)
        assert traffic.max() <= device.mem_bandwidth_gbs, (f.name, traffic.max())


def test_cpu_profile_has_llama3_8b_and_both_decoupled_shapes():
    costs = ProfileCosts.from_file(ROOT / "profiles" / "cpu.csv")
    llama = get_model("llama3-8b")
    for name, s in STRATEGIES.items():
        for n in ([1] if s.single_device else [1, 2, 4, 8]):
            for knobs in s.variants({"groups": [1, 16, 32]} if "groups" in s.profiled_knobs else {}):
                g, k = s.profile_key(knobs)
                for op in s.op_costs(llama, n, llama.tokens, knobs):
                    assert costs.has("llama3-8b", name, n, op, g, k), (name, n, g, op)
    for model in ("vit-base", "gpt2-s", "gpt2-m"):
        for n in (2, 4, 8):
            for name in ("bp-ag", "bp-sp"):
                assert costs.has(model, name, n, "decoupled_layer") and costs.has(model, name, n, "decoupled_layer_sliced")
