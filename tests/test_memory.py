"""Memory per device per strategy (hand counts), weight precision, proportional partitions, fits."""

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from astrasim.cli import app
from astrasim.compute.analytic import LayerShape
from astrasim.compute.memory import layer_weights, model_weights
from astrasim.compute.partition import proportional_split
from astrasim.models import get_model
from astrasim.pointrun import simulate_point
from astrasim.scenario import load_scenario
from astrasim.strategies import get
from astrasim.strategies.base import BuildOptions, split_tokens
from astrasim.strategies.synthetic import synthetic_profile
from astrasim.sweep import NOTHING_FITS, best_strategies, run_sweep

GPT2, LLAMA = get_model("gpt2-s"), get_model("llama3-8b")
OPTS = BuildOptions()


# -- hand counts ------------------------------------------------------------------------------


def test_weight_hand_counts():
    # GPT-2 small layer: 2 LayerNorms (2 x 2 x 768) + c_attn 768x2304+2304 + c_proj 768x768+768
    # + c_fc 768x3072+3072 + mlp c_proj 3072x768+768
    assert layer_weights(LayerShape.of(GPT2)) == 3072 + 1_771_776 + 590_592 + 2_362_368 + 2_360_064 == 7_087_872
    assert model_weights(GPT2) == 124_439_808  # the published 124M (wte tied, wpe 1024 x 768)
    # Llama-3-8B: 8.03 B weights, 32.1 GB in fp32, ~16 GB in 16 bits
    assert model_weights(LLAMA) == 8_030_261_248
    single = get("single")
    m32 = single.memory(LLAMA, 1, 512, single.knobs(), OPTS)[0]
    m16 = single.memory(LLAMA, 1, 512, single.knobs(), BuildOptions(weight_bits=16))[0]
    assert m32.weights / 1e9 == pytest.approx(32.12, abs=0.01)
    assert m16.weights / 1e9 == pytest.approx(16.06, abs=0.01)
    # KV of 512 tokens: 32 layers x 512 x (K and V) x 8 KV heads x 128 x 4 bytes
    assert m32.kv_cache == 32 * 512 * 2 * 8 * 128 * 4


def test_gpt2_memory_per_strategy_on_four_devices():
    n, t = 4, 1024
    layer32 = 7_087_872 * 4
    sp, astra, tp = (get(s) for s in ("sp", "astra", "tp"))
    for m in sp.memory(GPT2, n, t, sp.knobs(), OPTS):  # full weights everywhere, KV of its 256 tokens
        assert m.weights == model_weights(GPT2) * 4
        assert m.kv_cache == 12 * 256 * 2 * 768 * 4
    a = astra.memory(GPT2, n, t, astra.knobs(groups=32), OPTS)
    assert all(m.codebooks == 12 * 1024 * 768 * 4 for m in a)  # K x D per layer
    assert a[0].kv_cache < a[3].kv_cache  # causal skip: the last device keeps the codes of all earlier tokens
    shards = tp.memory(GPT2, n, t, tp.knobs(), OPTS)
    # heads and columns split: a quarter of each layer plus the replicated norms and output biases
    replicated = (3072 + 768 + 768) * 4
    outer = (model_weights(GPT2) - 12 * 7_087_872) * 4 / n  # vocab-parallel embeddings
    layers = [(m.weights - outer) / 12 for m in shards]
    assert sum(layers) == pytest.approx(layer32 + (n - 1) * replicated)
    assert all(m.total < sp.memory(GPT2, n, t, sp.knobs(), OPTS)[0].total for m in shards)
    bp = get("bp-ag")
    one_block = bp.memory(GPT2, n, t, bp.knobs(nb=1), OPTS)[0]
    assert one_block.weights < model_weights(GPT2) * 4  # 11 decoupled slices + 1 whole layer


def test_output_tokens_grow_the_kv_cache():
    sp = get("sp")
    base = sp.memory(GPT2, 4, 1024, sp.knobs(), OPTS)
    more = sp.memory(GPT2, 4, 1024, sp.knobs(), OPTS, output_tokens=100)
    assert more[3].kv_cache - base[3].kv_cache == 12 * 100 * 2 * 768 * 4
    assert more[0].kv_cache == base[0].kv_cache


# -- partitions -------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 5000), st.integers(1, 9))
def test_equal_weights_split_exactly_as_tensor_split(total, n):
    if total >= n:
        assert proportional_split(total, [1.0] * n) == split_tokens(total, n)


@settings(max_examples=200, deadline=None)
@given(st.integers(8, 5000), st.lists(st.floats(0.01, 100), min_size=2, max_size=8))
def test_proportional_split_sums_and_follows_weights(total, weights):
    if total < len(weights):
        return
    parts = proportional_split(total, weights)
    assert sum(parts) == total and min(parts) >= 1
    for p, w in zip(parts, weights):  # within one item of the ideal share (or the minimum)
        assert p <= max(1, total * w / sum(weights)) + 1


def test_split_caps_move_the_excess():
    assert proportional_split(100, [10, 1, 1, 1]) == [77, 8, 8, 7]
    assert proportional_split(100, [10, 1, 1, 1], maximum=[40, 100, 100, 100]) == [40, 20, 20, 20]
    # a clamped part leaves every other device its minimum
    assert proportional_split(8, [1, 0.01, 0.01, 0.01], maximum=[7, 8, 8, 8]) == [5, 1, 1, 1]
    with pytest.raises(ValueError):
        proportional_split(3, [1, 1, 1, 1])


# -- scenarios (a synthetic profile installed as 'cpu') ---------------------------------------


@pytest.fixture()
def profiles(tmp_path, monkeypatch):
    d = tmp_path / "profiles"
    d.mkdir()
    synthetic_profile([GPT2], devices=(2, 4), tokens=[16, 1024]).to_csv(d / "cpu.csv", index=False)
    synthetic_profile([LLAMA], devices=(2, 4), tokens=[128], groups=(32,)).to_csv(d / "cpu.llama.csv", index=False)
    monkeypatch.setenv("ASTRASIM_PROFILES", str(d))
    return d


def _scenario(tmp_path, **fields):
    data = {
        "models": ["gpt2-s"],
        "devices": [4],
        "strategies": ["single", "sp", {"name": "astra", "groups": 32}],
        "hardware": {"profile": "cpu"},
        "network": {"topology": "switch", "bandwidth_mbps": 1000},
        **fields,
    }
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


FLEET = ["jetson-orin-nano", "raspberry-pi-5", "raspberry-pi-5", "raspberry-pi-5"]


def test_uniform_fleet_path_matches_the_profile_roofline(profiles, tmp_path):
    """Forcing the per-device path (16-bit weights off, shares even) on one catalog device gives the
    profile-wide roofline's times: both price the same analytic op."""
    sc = load_scenario(_scenario(tmp_path, hardware={"profile": "cpu", "device": "jetson-orin-nano"}))
    for p in sc.points():
        a = simulate_point(p)
        from dataclasses import replace

        b = simulate_point(replace(p, fleet=("jetson-orin-nano",) * p.devices, device=None))
        assert b["latency_s"] == pytest.approx(a["latency_s"], rel=1e-9)


def test_weight_bits_cut_memory_and_memory_bound_time(profiles, tmp_path):
    sc = load_scenario(
        _scenario(tmp_path, weight_bits=[32, 8], tokens=16, hardware={"profile": "cpu", "device": "raspberry-pi-5"})
    )
    rows = {(r["strategy"], r["weight_bits"]): r for r in map(simulate_point, sc.points())}
    s32, s8 = rows[("single", 32)], rows[("single", 8)]
    assert s8["memory_gb"] < s32["memory_gb"] / 3
    assert s8["latency_s"] < s32["latency_s"]  # 16 tokens: weight reads dominate
    assert rows[("sp", 8)]["latency_s"] < rows[("sp", 32)]["latency_s"]


def test_mixed_fleet_proportional_beats_even_and_even_keeps_equal_shares(profiles, tmp_path):
    out = {}
    for part in ("even", "proportional"):
        sc = load_scenario(_scenario(tmp_path, hardware={"profile": "cpu", "devices": FLEET, "partition": part}))
        pts = sc.points()
        single = next(p for p in pts if p.strategy == "single")
        assert single.hardware == "jetson-orin-nano"  # single: the fleet's fastest device
        astra = next(p for p in pts if p.strategy == "astra")
        assert astra.hardware == "1xjetson-orin-nano+3xraspberry-pi-5"
        parts = get("astra").parts(astra.model, 4, astra.tokens, astra.knobs, astra.options())
        out[part] = (parts, simulate_point(astra)["latency_s"])
    assert out["even"][0] == [256, 256, 256, 256]
    assert out["proportional"][0][0] > 600 and sum(out["proportional"][0]) == 1024
    assert out["proportional"][1] < 0.8 * out["even"][1]


def test_llama_does_not_fit_on_a_pi_and_best_never_recommends_it(profiles, tmp_path):
    p = _scenario(
        tmp_path,
        models=["llama3-8b"],
        tokens=128,
        devices=[2, 4],
        strategies=["single", "tp", "sp"],
        hardware={"profile": "cpu", "device": "raspberry-pi-5"},
    )
    df = run_sweep(p, out=tmp_path / "r.csv", progress=False)
    single = df[df.strategy == "single"].iloc[0]
    assert not single["fits"] and single["memory_gb"] == pytest.approx(32.1, abs=0.1)
    tp = df[df.strategy == "tp"].set_index("devices")
    assert not tp.loc[2, "fits"] and tp.loc[2, "memory_gb"] == pytest.approx(16.1, abs=0.2)
    assert not tp.loc[4, "fits"] and tp.loc[4, "memory_gb"] > 7  # 8.1 GB on an 8 GB board less 1 GB headroom
    best = best_strategies(df)
    assert set(best["best"]) == {NOTHING_FITS}
    df16 = run_sweep(p, out=tmp_path / "r16.csv", progress=False, overrides=["weight_bits=4"])
    best16 = best_strategies(df16).set_index("devices")
    fit = df16[df16.fits & (df16.devices == 4)]
    assert best16.loc[4, "best"] in set(fit.strategy) | {"single"}


def test_best_says_single_when_no_split_is_faster(profiles, tmp_path):
    df = run_sweep(
        _scenario(tmp_path, network={"topology": "wifi", "bandwidth_mbps": 1}), out=tmp_path / "r.csv", progress=False
    )
    best = best_strategies(df)
    assert list(best["best"]) == ["single"]
    assert best["speedup_vs_single"].iloc[0] == 1.0


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"weight_bits": 12}, "weight_bits"),
        ({"memory": {"headroom_gb": -1}}, "memory.headroom_gb"),
        ({"hardware": {"profile": "cpu", "devices": FLEET[:2]}}, "hardware.devices"),
        (
            {
                "hardware": {
                    "profile": "cpu",
                    "devices": ["jetson-orin-nano", "pi-6", "raspberry-pi-5", "raspberry-pi-5"],
                }
            },
            "hardware.devices[1]",
        ),
        ({"hardware": {"profile": "cpu", "devices": FLEET, "device": "raspberry-pi-5"}}, "hardware.devices"),
        ({"hardware": {"profile": "cpu", "partition": "random"}}, "hardware.partition"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_written(profiles, tmp_path, fields, field):
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(
        app, ["sweep", str(_scenario(tmp_path, **fields)), "--out", str(out), "--no-plots", "--no-progress"]
    )
    assert res.exit_code == 2, res.output
    assert res.output.strip().count("\n") == 0 and res.output.startswith(f"error: {field}")
    assert not out.exists()


def test_simulate_prints_memory_per_device(profiles, tmp_path):
    res = CliRunner().invoke(
        app,
        ["simulate", str(_scenario(tmp_path, hardware={"profile": "cpu", "devices": FLEET})), "--set", "strategies=sp"],
    )
    assert res.exit_code == 0, res.output
    assert "memory (GB)" in res.output and "raspberry-pi-5" in res.output and "fits             yes" in res.output


def test_catalog_has_memory_for_every_device():
    from astrasim.compute.catalog import load_catalog

    cat = load_catalog()
    assert {d.name: d.memory_gb for d in cat.values() if d.name != "cpu"} == {
        "jetson-orin-nano": 8.0,
        "jetson-orin-nano-super": 8.0,
        "jetson-agx-orin": 64.0,
        "raspberry-pi-4b": 8.0,
        "raspberry-pi-5": 8.0,
        "gtx-1660-ti-laptop": 6.0,
        "intel-n150-minipc": 16.0,
    }
    assert all(d.sources["memory_gb"] for d in cat.values())


def test_plan_says_why_a_candidate_does_not_fit_and_proposes_mixed_fleets(profiles, tmp_path):
    plan = {
        "name": "llama",
        "model": "llama3-8b",
        "tokens": 128,
        "latency_target_s": 1e6,
        "devices": ["raspberry-pi-5", "jetson-orin-nano"],
        "device_counts": [1, 2, 4],
        "networks": ["ethernet-1g"],
        "strategies": ["single", "tp", "sp"],
        "fleets": [["jetson-orin-nano", "raspberry-pi-5", "raspberry-pi-5", "raspberry-pi-5"]],
        "sweep": {"hardware": {"profile": "cpu"}},
    }
    p = tmp_path / "plan.yaml"
    p.write_text(yaml.safe_dump(plan))
    res = CliRunner().invoke(app, ["plan", str(p), "--no-progress", "--out", str(tmp_path / "t.csv")])
    assert res.exit_code == 2, res.output  # fp32: nothing fits on 8 GB boards
    assert "memory binds" in res.output and "needs 32.1 GB per device, has 8 GB" in res.output
    plan["sweep"]["weight_bits"] = 8
    p.write_text(yaml.safe_dump(plan))
    res = CliRunner().invoke(app, ["plan", str(p), "--no-progress", "--out", str(tmp_path / "t.csv")])
    assert res.exit_code == 0, res.output
    import pandas as pd

    t = pd.read_csv(tmp_path / "t.csv")
    assert "1xjetson-orin-nano+3xraspberry-pi-5" in set(t["hardware"])
    assert not t.loc[t["strategy"] == "single", "feasible"].any()  # 8.0 GB of weights on an 8 GB board
    assert t.loc[t["feasible"], "fits"].all() and (t["accuracy"].isna()).all()  # 8-bit accuracy is unknown
    mixed = t[t["hardware"].str.contains("+", regex=False)].iloc[0]
    assert mixed["device_cost_usd"] == 499 + 3 * 80
